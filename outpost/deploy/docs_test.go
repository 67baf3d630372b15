package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// goldenBlock is a marker in a guide followed by the YAML block that must be
// the golden file it names, byte for byte.
var goldenBlock = regexp.MustCompile("(?s)<!-- golden: ([a-z0-9.-]+) -->\n```yaml\n(.*?)```\n")

// The deployment guides show exactly what the package renders: each marked
// snippet is a golden file the tests above produce and check. With -update
// the snippets are rewritten from the golden files.
func TestGuidesShowRenderedOutput(t *testing.T) {
	guides := map[string][]string{
		"deploy-kubernetes.md": {"kubernetes-proxy.yaml", "kubernetes-ldap.yaml"},
		"deploy-compose.md":    {"compose-proxy.yaml", "compose-ldap.yaml", "compose-proxy-full.yaml"},
	}
	for guide, want := range guides {
		t.Run(guide, func(t *testing.T) {
			path := filepath.Join("..", "..", "docs", guide)
			doc, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var seen []string
			out := goldenBlock.ReplaceAllStringFunc(string(doc), func(block string) string {
				m := goldenBlock.FindStringSubmatch(block)
				name, body := m[1], m[2]
				seen = append(seen, name)
				g, err := os.ReadFile(filepath.Join("testdata", name))
				if err != nil {
					t.Errorf("%s shows %s, which is not a golden file: %v", guide, name, err)
					return block
				}
				if body != string(g) && !*updateGolden {
					t.Errorf("%s: the snippet marked %s differs from testdata/%s (run go test -update)", guide, name, name)
				}
				return "<!-- golden: " + name + " -->\n```yaml\n" + string(g) + "```\n"
			})
			if strings.Join(seen, " ") != strings.Join(want, " ") {
				t.Errorf("%s shows %v, want %v", guide, seen, want)
			}
			if *updateGolden && out != string(doc) {
				if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
