package reconcile

import (
	"context"
	"encoding/pem"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/akoutpost/akoutpost/outpost"
	"github.com/akoutpost/akoutpost/outpost/deploy"
	"github.com/akoutpost/akoutpost/outpost/outposttest"
)

// recorder is a Reconciler that records what it was asked.
type recorder struct {
	mu     sync.Mutex
	inputs []deploy.Input
}

func (r *recorder) Apply(_ context.Context, in deploy.Input) (Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inputs = append(r.inputs, in)
	return Result{}, nil
}
func (r *recorder) Delete(context.Context, string) (Result, error) { return Result{}, nil }
func (r *recorder) Outposts(context.Context) ([]string, error)     { return nil, nil }

// The controller maps the core's service connections to reconciler
// configurations: a local Docker connection reaches LocalDockerHost, TLS
// keypairs are read from the core as PEM, a kubeconfig object becomes a
// kubeconfig and verify_ssl false skips verification; outposts get their
// own token and settings.
func TestControllerMapsConnections(t *testing.T) {
	core, err := outposttest.NewServer([]byte(`version: 1
entries:
` + controllerEntries + `  - model: authentik_crypto.certificatekeypair
    id: tls
    identifiers: {name: engine tls}
  - model: authentik_outposts.dockerserviceconnection
    id: local
    identifiers: {name: local}
    attrs: {local: true}
  - model: authentik_outposts.dockerserviceconnection
    id: remote
    identifiers: {name: remote}
    attrs: {local: false, url: "tcp://engine.example:2376", tls_verification: !KeyOf tls, tls_authentication: !KeyOf tls}
  - model: authentik_outposts.kubernetesserviceconnection
    id: kube
    identifiers: {name: kube}
    attrs:
      local: false
      verify_ssl: false
      kubeconfig: {apiVersion: v1, kind: Config, current-context: c, clusters: [{name: c, cluster: {server: "https://k.example"}}], contexts: [{name: c, context: {cluster: c, user: u}}], users: [{name: u, user: {token: kube-secret}}]}
  - model: authentik_outposts.outpost
    identifiers: {name: on local}
    attrs: {type: ldap, service_connection: !KeyOf local, config: {kubernetes_replicas: 3}}
  - model: authentik_outposts.outpost
    identifiers: {name: on remote}
    attrs: {type: ldap, service_connection: !KeyOf remote}
  - model: authentik_outposts.outpost
    identifiers: {name: on kube}
    attrs: {type: ldap, service_connection: !KeyOf kube}
`))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(core.Close)
	u, _ := url.Parse(core.URL())
	api, err := outpost.NewClient(outpost.ClientConfig{URL: u, Token: core.APITokens()[0].Key, RetryMax: -1})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	dockers := map[string]DockerConfig{}
	kubes := map[string]KubernetesConfig{}
	recs := map[string]*recorder{}
	ctl, err := NewController(ControllerConfig{
		Client: api, LocalDockerHost: "unix:///run/local.sock", Version: "2026.2.3",
		NewReconciler: func(kind string, d DockerConfig, k KubernetesConfig) (Reconciler, error) {
			mu.Lock()
			defer mu.Unlock()
			r := &recorder{}
			if kind == KindDocker {
				dockers[d.Connection] = d
				recs[d.Connection] = r
			} else {
				kubes[k.Connection] = k
				recs[k.Connection] = r
			}
			return r, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ctl.Poll(ctx)
	for _, s := range ctl.Status().Outposts {
		if s.Result != "ok" {
			t.Fatalf("%s: %+v", s.Name, s)
		}
	}
	var local, remote DockerConfig
	for _, d := range dockers {
		if d.Host == "unix:///run/local.sock" {
			local = d
		} else {
			remote = d
		}
	}
	if local.Connection == "" || local.CACert != nil {
		t.Errorf("local connection %+v", local)
	}
	if remote.Host != "tcp://engine.example:2376" {
		t.Errorf("remote host %q", remote.Host)
	}
	for name, p := range map[string][]byte{"CA": remote.CACert, "client certificate": remote.ClientCert, "client key": remote.ClientKey} {
		if b, _ := pem.Decode(p); b == nil {
			t.Errorf("remote %s is not PEM: %q", name, p)
		}
	}
	if len(kubes) != 1 {
		t.Fatalf("kubernetes connections %v", kubes)
	}
	for _, k := range kubes {
		if !k.InsecureSkipTLSVerify || !strings.Contains(string(k.Kubeconfig), "kube-secret") {
			t.Errorf("kubernetes connection: insecure %v, kubeconfig %s", k.InsecureSkipTLSVerify, k.Kubeconfig)
		}
		var kc map[string]any
		if err := yaml.Unmarshal(k.Kubeconfig, &kc); err != nil || kc["current-context"] != "c" {
			t.Errorf("kubeconfig %v, %v", kc, err)
		}
	}
	if strings.Contains(mustJSON(t, ctl.Status()), "kube-secret") {
		t.Error("the status holds kubeconfig credentials")
	}
	r := recs[local.Connection]
	if len(r.inputs) != 1 || r.inputs[0].Name != "on local" || r.inputs[0].Token != core.Token("on local") ||
		r.inputs[0].Settings.KubernetesReplicas != 3 || r.inputs[0].Version != "2026.2.3" {
		t.Fatalf("local inputs %+v", r.inputs)
	}
}

// controllerEntries are the blueprint entries every controller test
// needs: a superuser and its API token "controller", which the
// controller reads the core with.
const controllerEntries = `  - model: authentik_core.group
    id: admins
    identifiers: {name: admins}
    attrs: {is_superuser: true}
  - model: authentik_core.user
    id: admin
    identifiers: {username: admin}
    attrs: {groups: [!KeyOf admins]}
  - model: authentik_core.token
    identifiers: {identifier: controller}
    attrs: {user: !KeyOf admin, intent: api}
`
