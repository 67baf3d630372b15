package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/akoutpost/akoutpost/outpost"
	"github.com/akoutpost/akoutpost/outpost/outposttest"
)

// End to end: a blueprint with a Docker and a Kubernetes service
// connection and an outpost on each, read by the controller from the test
// core with a superuser's API token; edits in the core are applied at the
// next poll, and deleting the outposts removes what was created.
func TestControllerEndToEnd(t *testing.T) {
	e := dockerEngine(t)
	a := kubeAPI(t)
	dyn := admin(t, a)
	createNamespace(t, dyn, "ak-e2e")
	createNamespace(t, dyn, "ak-e2e-moved")
	kc, err := yaml.YAMLToJSON(a.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	bp := fmt.Sprintf(`version: 1
entries:
`+controllerEntries+`  - model: authentik_outposts.dockerserviceconnection
    id: docker
    identifiers: {name: test engine}
    attrs: {local: false, url: %q}
  - model: authentik_outposts.kubernetesserviceconnection
    id: kube
    identifiers: {name: test cluster}
    attrs: {local: false, kubeconfig: %s}
  - model: authentik_outposts.outpost
    identifiers: {name: e2e docker}
    attrs:
      type: ldap
      service_connection: !KeyOf docker
      config: {container_image: %q, docker_network: host, docker_labels: {stage: one}}
  - model: authentik_providers_proxy.proxyprovider
    id: app-provider
    identifiers: {name: app}
    attrs:
      mode: forward_single
      external_host: https://app.example.com
      authorization_flow: !Find [authentik_flows.flow, [slug, default-provider-authorization-implicit-consent]]
  - model: authentik_core.application
    identifiers: {slug: app}
    attrs: {name: app, provider: !KeyOf app-provider}
  - model: authentik_outposts.outpost
    identifiers: {name: e2e proxy}
    attrs:
      type: proxy
      providers: [!KeyOf app-provider]
      service_connection: !KeyOf kube
      config: {container_image: "example.org/akoutpost:1", kubernetes_namespace: ak-e2e}
  - model: authentik_outposts.outpost
    identifiers: {name: e2e kube}
    attrs:
      type: ldap
      service_connection: !KeyOf kube
      config: {container_image: "example.org/akoutpost:1", kubernetes_namespace: ak-e2e}
`, "unix://"+e.sock, kc, testImage)
	core, err := outposttest.NewServer([]byte(bp))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(core.Close)
	u, _ := url.Parse(core.URL())
	api, err := outpost.NewClient(outpost.ClientConfig{URL: u, Token: core.APITokens()[0].Key, RetryMax: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := NewController(ControllerConfig{Client: api, Poll: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ctl.closeAll)
	ctx := contextTimeout(t, 3*time.Minute)
	var ids = map[string]string{}
	for _, o := range core.Outposts() {
		ids[o.Name] = o.PK
	}
	t.Cleanup(func() {
		for _, pk := range ids {
			for _, r := range ctl.recs {
				r.rec.Delete(context.Background(), pk)
			}
		}
	})
	const container, kname = "ak-outpost-e2e-docker", "ak-outpost-e2e-kube"

	start := time.Now()
	ctl.Poll(ctx)
	t.Logf("first poll (a container and two outposts' Kubernetes objects) took %v", time.Since(start))
	for _, s := range ctl.Status().Outposts {
		if s.Result != "ok" {
			t.Fatalf("%s: %+v", s.Name, s)
		}
	}
	c := inspect(t, e, container)
	if !slices.Contains(c.Config.Env, "AUTHENTIK_TOKEN="+core.Token("e2e docker")) || c.Config.Labels["stage"] != "one" {
		t.Fatalf("container env %v, labels %v", c.Config.Env, c.Config.Labels)
	}
	sec := get(t, dyn, gvrSecret, "ak-e2e", kname)
	if tok, _, _ := unstructured.NestedString(sec.Object, "data", "token"); tok == "" {
		t.Fatal("the Secret has no token")
	}

	start = time.Now()
	ctl.cfg.Interval = time.Millisecond // reconcile even without a change
	ctl.Poll(ctx)
	t.Logf("a poll reconciling the three unchanged outposts took %v", time.Since(start))
	for _, s := range ctl.Status().Outposts {
		if s.Result != "ok" || s.Objects.Writes() != 0 {
			t.Fatalf("unchanged %s: %+v", s.Name, s)
		}
	}
	ctl.cfg.Interval = time.Hour

	// Edits in the core, applied at the next poll.
	if _, err := e.cli.ImageTag(ctx, client.ImageTagOptions{Source: testImage, Target: "akoutpost-reconcile-test:e2e"}); err != nil {
		t.Fatal(err)
	}
	must(t, core.UpdateOutpostConfig("e2e docker", map[string]any{
		"docker_labels": map[string]any{"stage": "two"}, "container_image": "akoutpost-reconcile-test:e2e"}))
	must(t, core.UpdateOutpostConfig("e2e kube", map[string]any{
		"kubernetes_replicas": 2, "kubernetes_disabled_components": []any{"service-metrics"}}))
	ctl.Poll(ctx)
	c = inspect(t, e, container)
	if c.Config.Labels["stage"] != "two" || c.Config.Image != "akoutpost-reconcile-test:e2e" {
		t.Errorf("after the edit: image %q, labels %v", c.Config.Image, c.Config.Labels)
	}
	if r, _, _ := unstructured.NestedInt64(get(t, dyn, gvrDeployment, "ak-e2e", kname).Object, "spec", "replicas"); r != 2 {
		t.Errorf("replicas %d", r)
	}
	absent(t, dyn, gvrService, "ak-e2e", kname+"-metrics")

	// The proxy outpost's Ingress routes its provider's host; an admin's
	// REST edit of the provider (another process, as authentik's UI does)
	// moves it at the next poll.
	ing := get(t, dyn, gvrIngress, "ak-e2e", "ak-outpost-e2e-proxy")
	if h, _, _ := unstructured.NestedSlice(ing.Object, "spec", "rules"); len(h) != 1 || h[0].(map[string]any)["host"] != "app.example.com" {
		t.Fatalf("ingress rules %v", h)
	}
	var pp struct {
		Providers []int  `json:"providers"`
		PK        string `json:"pk"`
	}
	must(t, api.Get(ctx, "/outposts/instances/"+ids["e2e proxy"]+"/", nil, &pp))
	must(t, api.Do(ctx, "PATCH", fmt.Sprintf("/providers/proxy/%d/", pp.Providers[0]), nil,
		map[string]any{"external_host": "https://moved.example.com"}, nil))
	ctl.Poll(ctx)
	ing = get(t, dyn, gvrIngress, "ak-e2e", "ak-outpost-e2e-proxy")
	if h, _, _ := unstructured.NestedSlice(ing.Object, "spec", "rules"); len(h) != 1 || h[0].(map[string]any)["host"] != "moved.example.com" {
		t.Fatalf("ingress rules after the provider's edit %v", h)
	}
	must(t, api.Do(ctx, "DELETE", "/outposts/instances/"+ids["e2e proxy"]+"/", nil, nil, nil))

	must(t, core.UpdateOutpostConfig("e2e kube", map[string]any{"kubernetes_namespace": "ak-e2e-moved"}))
	ctl.Poll(ctx)
	get(t, dyn, gvrDeployment, "ak-e2e-moved", kname)
	absent(t, dyn, gvrDeployment, "ak-e2e", kname)
	absent(t, dyn, gvrSecret, "ak-e2e", kname)

	// A container removed by hand is restored at the interval's reconcile.
	if _, err := e.cli.ContainerRemove(ctx, container, client.ContainerRemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	ctl.cfg.Interval = time.Millisecond
	ctl.Poll(ctx)
	ctl.cfg.Interval = time.Hour
	inspect(t, e, container)

	// Deleting the outposts removes everything, and only that.
	must(t, core.DeleteOutpost("e2e docker"))
	must(t, core.DeleteOutpost("e2e kube"))
	ctl.Poll(ctx)
	if _, err := e.cli.ContainerInspect(ctx, container, client.ContainerInspectOptions{}); err == nil {
		t.Error("the container outlived its outpost")
	}
	absent(t, dyn, gvrDeployment, "ak-e2e-moved", kname)
	absent(t, dyn, gvrSecret, "ak-e2e-moved", kname)
	absent(t, dyn, gvrService, "ak-e2e-moved", kname)
	st := ctl.Status()
	raw, _ := json.Marshal(st)
	for _, s := range st.Outposts {
		if s.Result != "removed" {
			t.Errorf("status after deletion: %s", raw)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
