package deploy_test

import (
	"bufio"
	"bytes"
	"fmt"
	"log"
	"strings"

	"github.com/akoutpost/akoutpost/outpost"
	"github.com/akoutpost/akoutpost/outpost/deploy"
)

// An LDAP outpost deployed with docker-compose, running this project's image
// instead of authentik's.
func ExampleCompose() {
	settings, err := outpost.DecodeSettings(map[string]any{
		"authentik_host":  "https://authentik.example.com/",
		"container_image": "ghcr.io/akoutpost/akoutpost:latest",
		"docker_labels":   map[string]any{"com.example.team": "identity"},
	})
	if err != nil {
		log.Fatal(err)
	}
	file, err := deploy.Compose(deploy.Input{
		Name:     "Directory",
		UUID:     "4a8b2f1e-93c5-4d6a-b7e0-5f21c8d9a3b4",
		Type:     deploy.TypeLDAP,
		Token:    "the-outpost-token",
		Settings: settings,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(file))
	// Output:
	// services:
	//   ak-outpost-directory:
	//     container_name: ak-outpost-directory
	//     image: ghcr.io/akoutpost/akoutpost:latest
	//     restart: unless-stopped
	//     environment:
	//       AUTHENTIK_HOST: https://authentik.example.com/
	//       AUTHENTIK_HOST_BROWSER: ""
	//       AUTHENTIK_INSECURE: "false"
	//       AUTHENTIK_TOKEN: the-outpost-token
	//     labels:
	//       com.example.team: identity
	//       io.goauthentik.outpost-uuid: 4a8b2f1e93c54d6ab7e05f21c8d9a3b4
	//     ports:
	//       - 389:3389/tcp
	//       - 636:6636/tcp
	//     healthcheck:
	//       test: [CMD, akoutpost, healthcheck]
	//       interval: 5s
	//       retries: 20
	//       start_period: 3s
}

// The objects of a proxy outpost with one forward-auth provider, in a
// cluster without the Prometheus operator.
func ExampleKubernetes() {
	settings, err := outpost.DecodeSettings(map[string]any{
		"authentik_host":                 "https://authentik.example.com/",
		"kubernetes_namespace":           "authentik",
		"kubernetes_disabled_components": []any{"prometheus servicemonitor"},
	})
	if err != nil {
		log.Fatal(err)
	}
	manifest, err := deploy.Kubernetes(deploy.Input{
		Name:     "Gateway",
		UUID:     "4a8b2f1e-93c5-4d6a-b7e0-5f21c8d9a3b4",
		Type:     deploy.TypeProxy,
		Version:  "2026.2.3",
		Token:    "the-outpost-token",
		Settings: settings,
		ProxyProviders: []deploy.ProxyProvider{
			{ExternalHost: "https://whoami.example.com", Mode: deploy.ModeForwardSingle},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	// Print each object's kind and name.
	sc := bufio.NewScanner(bytes.NewReader(manifest))
	kind := ""
	for sc.Scan() {
		line := sc.Text()
		if k, ok := strings.CutPrefix(line, "kind: "); ok {
			kind = k
		}
		if n, ok := strings.CutPrefix(line, "  name: "); ok && kind != "" {
			fmt.Println(kind, n)
			kind = ""
		}
	}
	// Output:
	// Secret ak-outpost-gateway
	// Deployment ak-outpost-gateway
	// Service ak-outpost-gateway
	// Service ak-outpost-gateway-metrics
	// Ingress ak-outpost-gateway
	// Middleware ak-outpost-gateway
}
