package deploy

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// loadCompose validates a rendered file with compose-go's loader, the code
// docker compose itself runs, and returns the project.
func loadCompose(t *testing.T, file []byte) *types.Project {
	t.Helper()
	details := types.ConfigDetails{
		WorkingDir:  t.TempDir(),
		ConfigFiles: []types.ConfigFile{{Filename: "compose.yaml", Content: file}},
		Environment: types.Mapping{},
	}
	p, err := loader.LoadWithContext(context.Background(), details, func(o *loader.Options) {
		o.SetProjectName("akoutpost", true)
	})
	if err != nil {
		t.Fatalf("compose-go rejects the file: %v\n%s", err, file)
	}
	return p
}

func TestComposeGolden(t *testing.T) {
	radius := ldapInput()
	radius.Name = "Radius"
	radius.Type = TypeRadius

	rac := ldapInput()
	rac.Name = "RAC"
	rac.Type = TypeRAC

	full := proxyInput()
	full.Settings.ContainerImage = "ghcr.io/akoutpost/akoutpost:1.0.0"
	full.Settings.DockerNetwork = "authentik_default"
	full.Settings.DockerLabels = map[string]string{"com.example.team": "identity", "traefik.enable": "false"}
	full.Settings.AuthentikHost = "https://Authentik.Example.com/"
	full.Settings.AuthentikHostInsecure = true
	full.Settings.AuthentikHostBrowser = "https://login.example.com/"

	noPorts := ldapInput()
	noPorts.Settings.DockerMapPorts = false
	noPorts.Settings.DockerNetwork = "host"

	tests := []struct {
		name     string
		in       Input
		ports    []string // published:target/protocol
		network  string
		healthcm []string
	}{
		{"proxy", proxyInput(), []string{"9000:9000/tcp", "9443:9443/tcp"}, "default", []string{"CMD", "/proxy", "healthcheck"}},
		{"ldap", ldapInput(), []string{"389:3389/tcp", "636:6636/tcp"}, "default", []string{"CMD", "/ldap", "healthcheck"}},
		{"radius", radius, []string{"1812:1812/udp"}, "default", []string{"CMD", "/radius", "healthcheck"}},
		{"rac", rac, nil, "default", []string{"CMD", "/rac", "healthcheck"}},
		{"proxy-full", full, []string{"9000:9000/tcp", "9443:9443/tcp"}, "authentik_default", []string{"CMD", "akoutpost", "healthcheck"}},
		{"ldap-host-network", noPorts, nil, "", []string{"CMD", "/ldap", "healthcheck"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Compose(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "compose-"+tt.name+".yaml", got)
			p := loadCompose(t, got)
			name, err := ContainerName(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			svc, err := p.GetService(name)
			if err != nil {
				t.Fatal(err)
			}
			if svc.ContainerName != name || svc.Restart != "unless-stopped" {
				t.Errorf("container_name %q restart %q", svc.ContainerName, svc.Restart)
			}
			var ports []string
			for _, pc := range svc.Ports {
				ports = append(ports, fmt.Sprintf("%s:%d/%s", pc.Published, pc.Target, pc.Protocol))
				if pc.Target == 9300 {
					t.Error("the metrics port is published")
				}
			}
			if !slices.Equal(ports, tt.ports) {
				t.Errorf("ports %v, want %v", ports, tt.ports)
			}
			var nets []string
			for n := range svc.Networks {
				nets = append(nets, n)
			}
			if tt.network == "" {
				if len(nets) != 0 {
					t.Errorf("networks %v, want none", nets)
				}
			} else if !slices.Equal(nets, []string{tt.network}) {
				t.Errorf("networks %v, want %s", nets, tt.network)
			}
			if svc.HealthCheck == nil || !slices.Equal([]string(svc.HealthCheck.Test), tt.healthcm) {
				t.Errorf("healthcheck %+v, want %v", svc.HealthCheck, tt.healthcm)
			}
			if svc.HealthCheck != nil && (svc.HealthCheck.Retries == nil || *svc.HealthCheck.Retries != 20) {
				t.Errorf("healthcheck retries %v", svc.HealthCheck.Retries)
			}
			env := svc.Environment
			if env["AUTHENTIK_TOKEN"] == nil || *env["AUTHENTIK_TOKEN"] != testToken {
				t.Errorf("AUTHENTIK_TOKEN %v", env["AUTHENTIK_TOKEN"])
			}
			if svc.Labels["io.goauthentik.outpost-uuid"] != "4a8b2f1e93c54d6ab7e05f21c8d9a3b4" {
				t.Errorf("labels %v", svc.Labels)
			}
		})
	}
}

// The compose environment is authentik's Docker controller's: the host
// lower-cased and insecure as true/false.
func TestComposeEnvironment(t *testing.T) {
	in := proxyInput()
	in.Settings.AuthentikHost = "https://Authentik.Example.com/"
	in.Settings.AuthentikHostInsecure = true
	in.Settings.AuthentikHostBrowser = "https://Login.example.com/"
	got, err := Compose(in)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := loadCompose(t, got).GetService("ak-outpost-proxy-outpost")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"AUTHENTIK_HOST":         "https://authentik.example.com/",
		"AUTHENTIK_INSECURE":     "true",
		"AUTHENTIK_TOKEN":        testToken,
		"AUTHENTIK_HOST_BROWSER": "https://Login.example.com/",
	}
	for k, v := range want {
		if svc.Environment[k] == nil || *svc.Environment[k] != v {
			t.Errorf("%s = %v, want %q", k, svc.Environment[k], v)
		}
	}
}

// A "$" in a token or label would otherwise be read by compose as a variable
// and silently replaced by an empty string.
func TestComposeDollarIsNotInterpolated(t *testing.T) {
	in := proxyInput()
	in.Token = "abc$HOME${PATH}$$x"
	in.Settings.DockerLabels = map[string]string{"price": "$5"}
	got, err := Compose(in)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := loadCompose(t, got).GetService("ak-outpost-proxy-outpost")
	if err != nil {
		t.Fatal(err)
	}
	if v := svc.Environment["AUTHENTIK_TOKEN"]; v == nil || *v != in.Token {
		t.Errorf("token after loading: %v", v)
	}
	if svc.Labels["price"] != "$5" {
		t.Errorf("label after loading: %q", svc.Labels["price"])
	}
}

func TestComposeTraefikLabels(t *testing.T) {
	in := proxyInput()
	in.ProxyProviders = append(in.ProxyProviders, ProxyProvider{ExternalHost: "http://other.example.com:8080", Mode: ModeProxy})
	in.Settings.DockerLabels = map[string]string{"traefik.enable": "false"}
	got, err := Compose(in)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := loadCompose(t, got).GetService("ak-outpost-proxy-outpost")
	if err != nil {
		t.Fatal(err)
	}
	const n = "ak-outpost-proxy-outpost"
	want := map[string]string{
		"traefik.enable": "true", // ours win over docker_labels, as in authentik
		"traefik.http.routers." + n + "-router.rule":                            "(Host(`app.example.com`) || Host(`whoami.example.com`) || Host(`other.example.com:8080`)) && PathPrefix(`/outpost.goauthentik.io`)",
		"traefik.http.routers." + n + "-router.tls":                             "true",
		"traefik.http.routers." + n + "-router.service":                         n + "-service",
		"traefik.http.services." + n + "-service.loadbalancer.healthcheck.path": "/outpost.goauthentik.io/ping",
		"traefik.http.services." + n + "-service.loadbalancer.healthcheck.port": "9300",
		"traefik.http.services." + n + "-service.loadbalancer.server.port":      "9000",
	}
	for k, v := range want {
		if svc.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, svc.Labels[k], v)
		}
	}

	// Without providers there is no host to route: no Traefik labels.
	in.ProxyProviders = nil
	got, err = Compose(in)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(got), "traefik.http") {
		t.Errorf("Traefik labels without providers:\n%s", got)
	}
}

func TestComposeHealthcheckOverride(t *testing.T) {
	in := ldapInput()
	in.HealthcheckCommand = []string{"CMD-SHELL", "wget -q -O- http://127.0.0.1:9300/outpost.goauthentik.io/ping"}
	got, err := Compose(in)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := loadCompose(t, got).GetService("ak-outpost-ldap-outpost")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal([]string(svc.HealthCheck.Test), in.HealthcheckCommand) {
		t.Errorf("healthcheck %v", svc.HealthCheck.Test)
	}
}

func TestComposeBadContainerName(t *testing.T) {
	in := ldapInput()
	in.Settings.ObjectNamingTemplate = "outpost %(name)s" // a space: no valid container name
	if _, err := Compose(in); err == nil || !strings.Contains(err.Error(), "container name") {
		t.Fatalf("error %v, want an invalid container name", err)
	}
	// Kubernetes names are sanitised instead.
	if name, err := ObjectName(in); err != nil || name != "outpost-ldap-outpost" {
		t.Errorf("ObjectName = %q, %v", name, err)
	}
}
