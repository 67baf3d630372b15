package proxy_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDocsShowTestedSnippets: the setup guides must show, verbatim, the
// configuration files the tests run (or, for Traefik and Envoy, the files
// the stand-ins are modelled on), so a guide cannot drift from what is
// tested.
func TestDocsShowTestedSnippets(t *testing.T) {
	for _, tc := range []struct {
		doc      string
		snippets []string
	}{
		{"proxy-nginx.md", []string{"nginx.conf.tmpl", "nginx-lb.conf.tmpl"}},
		{"proxy-caddy.md", []string{"Caddyfile.tmpl"}},
		{"proxy-traefik.md", []string{"traefik.yml"}},
		{"proxy-envoy.md", []string{"envoy.yaml"}},
	} {
		t.Run(tc.doc, func(t *testing.T) {
			doc, err := os.ReadFile(filepath.Join("..", "docs", tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range tc.snippets {
				snippet, err := os.ReadFile(filepath.Join("testdata", name))
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(string(doc), strings.TrimSpace(string(snippet))) {
					t.Errorf("docs/%s does not show testdata/%s verbatim", tc.doc, name)
				}
			}
		})
	}
}
