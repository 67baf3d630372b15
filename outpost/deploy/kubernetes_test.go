package deploy

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/akoutpost/akoutpost/outpost"
)

// document is one object of a rendered manifest, decoded twice: generically
// and, for kinds of k8s.io/api, strictly into its typed struct.
type document struct {
	kind, name string
	raw        []byte
	generic    map[string]any
	typed      any
}

// splitManifest decodes a multi-document manifest. Strict decoding fails on
// any field the typed struct does not know, so a misspelt field cannot pass.
func splitManifest(t *testing.T, manifest []byte) []document {
	t.Helper()
	var docs []document
	for _, part := range bytes.Split(manifest, []byte("---\n")) {
		d := document{raw: part}
		if err := yaml.Unmarshal(part, &d.generic); err != nil {
			t.Fatalf("decoding document: %v\n%s", err, part)
		}
		d.kind, _ = d.generic["kind"].(string)
		md, _ := d.generic["metadata"].(map[string]any)
		d.name, _ = md["name"].(string)
		switch d.kind {
		case "Secret":
			d.typed = &corev1.Secret{}
		case "Deployment":
			d.typed = &appsv1.Deployment{}
		case "Service":
			d.typed = &corev1.Service{}
		case "Ingress":
			d.typed = &networkingv1.Ingress{}
		case "ServiceMonitor", "Middleware", "HTTPRoute":
		default:
			t.Fatalf("unexpected kind %q", d.kind)
		}
		if d.typed != nil {
			if err := yaml.UnmarshalStrict(part, d.typed); err != nil {
				t.Fatalf("%s %s does not decode strictly: %v", d.kind, d.name, err)
			}
		}
		docs = append(docs, d)
	}
	return docs
}

func kinds(docs []document) string {
	var s []string
	for _, d := range docs {
		s = append(s, d.kind+"/"+d.name)
	}
	return strings.Join(s, " ")
}

func TestKubernetesGolden(t *testing.T) {
	full := proxyInput()
	full.Name = "Everything Proxy"
	full.Settings.KubernetesReplicas = 3
	full.Settings.KubernetesServiceType = "LoadBalancer"
	full.Settings.KubernetesIngressAnnotations = map[string]string{
		"cert-manager.io/cluster-issuer":           "letsencrypt",
		"nginx.ingress.kubernetes.io/affinity":     "none", // overrides a default
		"traefik.ingress.kubernetes.io/router.tls": "false",
	}
	full.Settings.KubernetesIngressClassName = "nginx"
	full.Settings.KubernetesIngressPathType = "ImplementationSpecific"
	full.Settings.KubernetesIngressSecretName = "outpost-tls"
	full.Settings.KubernetesImagePullSecrets = []string{"registry-a", "registry-b"}
	full.Settings.KubernetesHTTPRouteParentRefs = []map[string]any{{"name": "gateway", "namespace": "infra", "sectionName": "https"}}
	full.Settings.KubernetesHTTPRouteAnnotations = map[string]string{"example.com/owner": "team"}
	full.Settings.ContainerImage = "ghcr.io/akoutpost/akoutpost:1.0.0"
	full.Settings.AuthentikHostInsecure = true
	full.Settings.AuthentikHostBrowser = "https://login.example.com/"
	full.ProxyProviders = append(full.ProxyProviders,
		ProxyProvider{ExternalHost: "http://Plain.Example.com:8080/path", Mode: ModeForwardDomain})
	full.Settings.KubernetesJSONPatches = map[string][]map[string]any{
		ComponentDeployment: {
			{"op": "add", "path": "/spec/template/spec/containers/0/resources", "value": map[string]any{
				"limits": map[string]any{"memory": "128Mi"}}},
			{"op": "remove", "path": "/spec/template/spec/containers/0/livenessProbe"},
		},
		ComponentService: {{"op": "replace", "path": "/spec/type", "value": "NodePort"}},
	}

	noTLS := proxyInput()
	noTLS.Settings.KubernetesIngressSecretName = ""

	rac := ldapInput()
	rac.Name = "RAC"
	rac.Type = TypeRAC

	radius := ldapInput()
	radius.Name = "Radius"
	radius.Type = TypeRadius

	proxyOnly := proxyInput()
	proxyOnly.ProxyProviders = proxyOnly.ProxyProviders[:1] // no forward auth: no Middleware

	noProviders := proxyInput()
	noProviders.ProxyProviders = nil

	tests := []struct {
		name   string
		in     Input
		kinds  string
		absent string // text the manifest must not hold
	}{
		{"proxy", proxyInput(), "Secret/ak-outpost-proxy-outpost Deployment/ak-outpost-proxy-outpost Service/ak-outpost-proxy-outpost Service/ak-outpost-proxy-outpost-metrics ServiceMonitor/ak-outpost-proxy-outpost Ingress/ak-outpost-proxy-outpost Middleware/ak-outpost-proxy-outpost", ""},
		{"ldap", ldapInput(), "Secret/ak-outpost-ldap-outpost Deployment/ak-outpost-ldap-outpost Service/ak-outpost-ldap-outpost Service/ak-outpost-ldap-outpost-metrics ServiceMonitor/ak-outpost-ldap-outpost", ""},
		{"radius", radius, "Secret/ak-outpost-radius Deployment/ak-outpost-radius Service/ak-outpost-radius Service/ak-outpost-radius-metrics ServiceMonitor/ak-outpost-radius", ""},
		{"rac", rac, "Secret/ak-outpost-rac Deployment/ak-outpost-rac Service/ak-outpost-rac-metrics ServiceMonitor/ak-outpost-rac", ""},
		{"proxy-full", full, "Secret/ak-outpost-everything-proxy Deployment/ak-outpost-everything-proxy Service/ak-outpost-everything-proxy Service/ak-outpost-everything-proxy-metrics ServiceMonitor/ak-outpost-everything-proxy Ingress/ak-outpost-everything-proxy HTTPRoute/ak-outpost-everything-proxy Middleware/ak-outpost-everything-proxy", ""},
		{"proxy-notls", noTLS, "", "secretName:"},
		{"proxy-noproviders", noProviders, "Secret/ak-outpost-proxy-outpost Deployment/ak-outpost-proxy-outpost Service/ak-outpost-proxy-outpost Service/ak-outpost-proxy-outpost-metrics ServiceMonitor/ak-outpost-proxy-outpost", ""},
		{"proxy-only", proxyOnly, "Secret/ak-outpost-proxy-outpost Deployment/ak-outpost-proxy-outpost Service/ak-outpost-proxy-outpost Service/ak-outpost-proxy-outpost-metrics ServiceMonitor/ak-outpost-proxy-outpost Ingress/ak-outpost-proxy-outpost", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Kubernetes(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			docs := splitManifest(t, got)
			if tt.kinds != "" && kinds(docs) != tt.kinds {
				t.Errorf("objects:\n got %s\nwant %s", kinds(docs), tt.kinds)
			}
			if tt.absent != "" && strings.Contains(string(got), tt.absent) {
				t.Errorf("the manifest holds %q", tt.absent)
			}
			golden(t, "kubernetes-"+tt.name+".yaml", got)
		})
	}
}

// The typed objects carry what authentik's controllers put in them.
func TestKubernetesObjects(t *testing.T) {
	in := proxyInput()
	in.Settings.AuthentikHostInsecure = true
	got, err := Kubernetes(in)
	if err != nil {
		t.Fatal(err)
	}
	byKind := map[string]document{}
	for _, d := range splitManifest(t, got) {
		byKind[d.kind+"/"+d.name] = d
	}
	const name = "ak-outpost-proxy-outpost"

	secret := byKind["Secret/"+name].typed.(*corev1.Secret)
	wantData := map[string]string{
		"authentik_host":          "https://authentik.example.com/",
		"authentik_host_insecure": "True",
		"token":                   testToken,
		"authentik_host_browser":  "",
	}
	for k, v := range wantData {
		if got, ok := secret.Data[k]; !ok || string(got) != v {
			t.Errorf("secret %s = %q, want %q", k, got, v)
		}
	}
	if len(secret.Data) != len(wantData) {
		t.Errorf("secret has %d keys, want %d", len(secret.Data), len(wantData))
	}

	dep := byKind["Deployment/"+name].typed.(*appsv1.Deployment)
	c := dep.Spec.Template.Spec.Containers[0]
	if c.Image != "ghcr.io/goauthentik/proxy:2026.2.3" || c.Name != "proxy" {
		t.Errorf("container %s image %s", c.Name, c.Image)
	}
	envKeys := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name != name {
			t.Errorf("env %s is not read from the Secret", e.Name)
			continue
		}
		envKeys[e.Name] = e.ValueFrom.SecretKeyRef.Key
	}
	for env, key := range map[string]string{"AUTHENTIK_HOST": "authentik_host", "AUTHENTIK_TOKEN": "token", "AUTHENTIK_INSECURE": "authentik_host_insecure", "AUTHENTIK_HOST_BROWSER": "authentik_host_browser"} {
		if envKeys[env] != key {
			t.Errorf("env %s reads key %q, want %q", env, envKeys[env], key)
		}
	}
	for _, pr := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
		if pr == nil || pr.HTTPGet == nil || pr.HTTPGet.Path != HealthPath || pr.HTTPGet.Port.IntValue() != 9300 {
			t.Errorf("probe %+v does not use the health endpoint", pr)
		}
	}
	for k, v := range dep.Spec.Selector.MatchLabels {
		if dep.Spec.Template.Labels[k] != v {
			t.Errorf("selector label %s=%s is not on the pod template", k, v)
		}
	}

	svc := byKind["Service/"+name].typed.(*corev1.Service)
	for _, p := range svc.Spec.Ports {
		if p.Port == 9300 {
			t.Error("the data-plane Service publishes the metrics port")
		}
	}
	msvc := byKind["Service/"+name+"-metrics"].typed.(*corev1.Service)
	if msvc.Spec.Type != corev1.ServiceTypeClusterIP || len(msvc.Spec.Ports) != 1 || msvc.Spec.Ports[0].Name != "http-metrics" {
		t.Errorf("metrics Service %+v", msvc.Spec)
	}
	// The ServiceMonitor must select the metrics Service and nothing else.
	sm := byKind["ServiceMonitor/"+name].generic
	sel := sm["spec"].(map[string]any)["selector"].(map[string]any)["matchLabels"].(map[string]any)
	for k, v := range sel {
		if msvc.Labels[k] != v {
			t.Errorf("ServiceMonitor selects %s=%v, which the metrics Service lacks", k, v)
		}
	}
	if _, ok := sel["goauthentik.io/service-type"]; !ok {
		t.Error("ServiceMonitor would also select the data-plane Service")
	}

	ing := byKind["Ingress/"+name].typed.(*networkingv1.Ingress)
	if len(ing.Spec.Rules) != 2 || ing.Spec.Rules[0].Host != "app.example.com" || ing.Spec.Rules[1].HTTP.Paths[0].Path != "/outpost.goauthentik.io" {
		t.Errorf("ingress rules %+v", ing.Spec.Rules)
	}
	if len(ing.Spec.TLS) != 1 || ing.Spec.TLS[0].SecretName != "authentik-outpost-tls" || len(ing.Spec.TLS[0].Hosts) != 2 {
		t.Errorf("ingress TLS %+v", ing.Spec.TLS)
	}

	mw := byKind["Middleware/"+name].generic
	addr := mw["spec"].(map[string]any)["forwardAuth"].(map[string]any)["address"]
	if addr != "http://ak-outpost-proxy-outpost.authentik:9000/outpost.goauthentik.io/auth/traefik" {
		t.Errorf("middleware address %v", addr)
	}
}

func TestKubernetesDisabledComponents(t *testing.T) {
	all := []string{ComponentSecret, ComponentDeployment, ComponentService, ComponentServiceMetrics,
		ComponentServiceMonitor, ComponentIngress, ComponentHTTPRoute, ComponentTraefikMiddleware}
	kindOf := map[string]string{
		ComponentSecret: "Secret/x", ComponentDeployment: "Deployment/x", ComponentService: "Service/x",
		ComponentServiceMetrics: "Service/x-metrics", ComponentServiceMonitor: "ServiceMonitor/x",
		ComponentIngress: "Ingress/x", ComponentHTTPRoute: "HTTPRoute/x", ComponentTraefikMiddleware: "Middleware/x",
	}
	for _, off := range all {
		t.Run(off, func(t *testing.T) {
			in := proxyInput()
			in.Settings.ObjectNamingTemplate = "x"
			in.Settings.KubernetesHTTPRouteParentRefs = []map[string]any{{"name": "gw"}}
			in.Settings.KubernetesDisabledComponents = []string{off, "no such component"}
			got, err := Kubernetes(in)
			if err != nil {
				t.Fatal(err)
			}
			have := " " + kinds(splitManifest(t, got)) + " "
			for _, c := range all {
				present := strings.Contains(have, " "+kindOf[c]+" ")
				if present == (c == off) {
					t.Errorf("%s present=%v with %q disabled: %s", c, present, off, have)
				}
			}
		})
	}
	t.Run("all", func(t *testing.T) {
		in := proxyInput()
		in.Settings.KubernetesDisabledComponents = all
		got, err := Kubernetes(in)
		if err != nil || len(got) != 0 {
			t.Errorf("got %q, %v; want nothing", got, err)
		}
	})
}

func TestKubernetesJSONPatchErrors(t *testing.T) {
	tests := []struct {
		name  string
		patch map[string][]map[string]any
		want  string
	}{
		{"missing path", map[string][]map[string]any{ComponentDeployment: {{"op": "remove", "path": "/spec/nothing"}}}, `no member "nothing"`},
		{"unknown op", map[string][]map[string]any{ComponentService: {{"op": "merge", "path": "/spec"}}}, `unknown op "merge"`},
		{"bad op type", map[string][]map[string]any{ComponentService: {{"op": 1, "path": "/spec"}}}, `"op" is not a string`},
		// A failing test op on the Secret must not reveal the token.
		{"secret test", map[string][]map[string]any{ComponentSecret: {{"op": "test", "path": "/data/token", "value": "x"}}}, "test failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := proxyInput()
			in.Settings.KubernetesJSONPatches = tt.patch
			_, err := Kubernetes(in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			b64 := base64.StdEncoding.EncodeToString([]byte(testToken))
			if strings.Contains(err.Error(), testToken) || strings.Contains(err.Error(), b64) {
				t.Errorf("error reveals the token: %v", err)
			}
		})
	}
}

func TestKubernetesInputErrors(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Input)
		want   string
	}{
		{"embedded", func(in *Input) { in.Managed = "goauthentik.io/outposts/embedded" }, "embedded"},
		{"no name", func(in *Input) { in.Name = " " }, "name is empty"},
		{"bad uuid", func(in *Input) { in.UUID = "nope" }, "UUID"},
		{"bad type", func(in *Input) { in.Type = "smtp" }, "unknown outpost type"},
		{"no token", func(in *Input) { in.Token = "" }, "token is empty"},
		{"no version", func(in *Input) { in.Version = "" }, "version is empty"},
		{"bad template", func(in *Input) { in.Settings.ObjectNamingTemplate = "ak-%(nmae)s" }, "unknown placeholder"},
		{"bad host", func(in *Input) { in.ProxyProviders[0].ExternalHost = "app.example.com" }, "not an absolute URL"},
		{"negative replicas", func(in *Input) { in.Settings.KubernetesReplicas = -1 }, "out of range"},
		{"parent ref without name", func(in *Input) {
			in.Settings.KubernetesHTTPRouteParentRefs = []map[string]any{{"namespace": "x"}}
		}, "name is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := proxyInput()
			tt.mutate(&in)
			_, err := Kubernetes(in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Kubernetes: error %v, want one containing %q", err, tt.want)
			}
			if _, err := Compose(in); err == nil {
				t.Fatalf("Compose accepted the input")
			}
		})
	}
	in := proxyInput()
	in.Managed = "goauthentik.io/outposts/embedded"
	if _, err := Kubernetes(in); !errors.Is(err, ErrEmbedded) {
		t.Errorf("embedded: %v, want ErrEmbedded", err)
	}
}

// Whatever the outpost is called, every name and label is one the API
// server accepts.
func TestKubernetesNamesAreValid(t *testing.T) {
	names := []string{
		"Proxy Outpost", "ÄÖÜ ñ café", "!!!", "a_b_c", strings.Repeat("very long name ", 10),
		"--x--", "日本語", "with.dots.and:colons",
	}
	templates := []string{"ak-outpost-%(name)s", "%(name)s-%(uuid)s", "%(uuid)s", "AK_%(name)s", "%%(name)s"}
	for _, n := range names {
		for _, tmpl := range templates {
			in := ldapInput()
			in.Name = n
			in.Version = "2026.2.3+abc"
			in.Settings.ObjectNamingTemplate = tmpl
			got, err := Kubernetes(in)
			if err != nil {
				t.Fatalf("%q %q: %v", n, tmpl, err)
			}
			for _, d := range splitManifest(t, got) {
				if errs := validation.IsDNS1123Label(d.name); len(errs) > 0 {
					t.Errorf("%q %q: %s name %q: %v", n, tmpl, d.kind, d.name, errs)
				}
				md := d.generic["metadata"].(map[string]any)
				labels, _ := md["labels"].(map[string]any)
				for k, v := range labels {
					if errs := validation.IsValidLabelValue(fmt.Sprint(v)); len(errs) > 0 {
						t.Errorf("%q: label %s=%q: %v", n, k, v, errs)
					}
				}
			}
		}
	}
}

// NewInput reads a proxy outpost's providers from the core's JSON.
func TestNewInput(t *testing.T) {
	info := outpost.Info{PK: testUUID, Name: "Proxy Outpost", Type: TypeProxy}
	providers := []json.RawMessage{
		json.RawMessage(`{"pk": 1, "name": "app", "external_host": "https://app.example.com", "mode": "proxy"}`),
		json.RawMessage(`{"pk": 2, "name": "whoami", "external_host": "https://whoami.example.com", "mode": "forward_single"}`),
	}
	in, err := NewInput(info, testSettings(), providers, testToken, testVersion)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Kubernetes(in)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "kubernetes-proxy.yaml", got)

	if _, err := NewInput(info, testSettings(), []json.RawMessage{json.RawMessage(`[`)}, testToken, testVersion); err == nil {
		t.Error("NewInput accepted a malformed provider")
	}
}
