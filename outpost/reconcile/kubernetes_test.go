package reconcile

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/akoutpost/akoutpost/outpost"
	"github.com/akoutpost/akoutpost/outpost/deploy"
)

var (
	gvrNamespace  = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	gvrSecret     = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	gvrService    = schema.GroupVersionResource{Version: "v1", Resource: "services"}
	gvrDeployment = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	gvrIngress    = schema.GroupVersionResource{Group: "networking.k8s.io", Version: "v1", Resource: "ingresses"}
	gvrCRD        = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	gvrSM         = schema.GroupVersionResource{Group: "monitoring.coreos.com", Version: "v1", Resource: "servicemonitors"}
)

// kubeInput is a proxy outpost with a proxy and a forward-auth provider in
// namespace ns.
func kubeInput(uuid, ns string) deploy.Input {
	s := outpost.DefaultSettings()
	s.AuthentikHost = "https://core.example/"
	s.ContainerImage = "example.org/akoutpost:1"
	s.KubernetesNamespace = ns
	return deploy.Input{
		Name:     "Proxy " + ns,
		UUID:     uuid,
		Type:     deploy.TypeProxy,
		Token:    "kube-secret-token-" + uuid[:8],
		Settings: s,
		ProxyProviders: []deploy.ProxyProvider{
			{ExternalHost: "https://app.example.com", Mode: deploy.ModeProxy},
			{ExternalHost: "https://auth.example.com", Mode: deploy.ModeForwardSingle},
		},
	}
}

func admin(t *testing.T, a *apiServer) *dynamic.DynamicClient {
	t.Helper()
	d, err := dynamic.NewForConfig(a.restConfig(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func createNamespace(t *testing.T, dyn dynamic.Interface, name string) {
	t.Helper()
	ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name}}}
	if _, err := dyn.Resource(gvrNamespace).Create(context.Background(), ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

func newKube(t *testing.T, a *apiServer, c *writeCounter, connection string) *Kubernetes {
	t.Helper()
	k, err := NewKubernetes(KubernetesConfig{REST: a.restConfig(t, c), Connection: connection})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func get(t *testing.T, dyn dynamic.Interface, gvr schema.GroupVersionResource, ns, name string) *unstructured.Unstructured {
	t.Helper()
	u, err := dyn.Resource(gvr).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("getting %s %s/%s: %v", gvr.Resource, ns, name, err)
	}
	return u
}

func absent(t *testing.T, dyn dynamic.Interface, gvr schema.GroupVersionResource, ns, name string) {
	t.Helper()
	_, err := dyn.Resource(gvr).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("%s %s/%s still exists (%v)", gvr.Resource, ns, name, err)
	}
}

func TestKubernetesAppliesMovesAndDeletes(t *testing.T) {
	a := kubeAPI(t)
	dyn := admin(t, a)
	ctx := contextTimeout(t, 3*time.Minute)
	createNamespace(t, dyn, "ak-one")
	createNamespace(t, dyn, "ak-two")
	var cnt writeCounter
	k := newKube(t, a, &cnt, "kconn-a")
	in := kubeInput("aaaaaaaa-93c5-4d6a-b7e0-5f21c8d9a3b4", "ak-one")
	t.Cleanup(func() { k.Delete(context.Background(), in.UUID) })
	name := "ak-outpost-proxy-ak-one"

	start := time.Now()
	res, err := k.Apply(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first apply took %v", time.Since(start))
	wantCreated := []string{"Secret ak-one/" + name, "Deployment ak-one/" + name, "Service ak-one/" + name,
		"Service ak-one/" + name + "-metrics", "Ingress ak-one/" + name}
	if !slices.Equal(res.Created, wantCreated) {
		t.Fatalf("created %v, want %v", res.Created, wantCreated)
	}
	var skipped []string
	for _, s := range res.Skipped {
		skipped = append(skipped, s.Object)
		if !strings.Contains(s.Reason, "custom resource definition") {
			t.Errorf("skip reason %q", s.Reason)
		}
	}
	if !slices.Equal(skipped, []string{"ServiceMonitor ak-one/" + name, "Middleware ak-one/" + name}) {
		t.Fatalf("skipped %v", skipped)
	}
	dep := get(t, dyn, gvrDeployment, "ak-one", name)
	if r, _, _ := unstructured.NestedInt64(dep.Object, "spec", "replicas"); r != 1 {
		t.Errorf("replicas %d", r)
	}
	if l := dep.GetLabels(); l[LabelManagedBy] != ManagedBy || l[LabelConnection] != "kconn-a" || l["goauthentik.io/outpost-uuid"] != "aaaaaaaa93c54d6ab7e05f21c8d9a3b4" {
		t.Errorf("labels %v", l)
	}
	var managers []string
	for _, m := range dep.GetManagedFields() {
		managers = append(managers, m.Manager+"/"+string(m.Operation))
	}
	if !slices.Contains(managers, "akoutpost/Apply") {
		t.Errorf("managed fields %v lack akoutpost/Apply", managers)
	}
	sec := get(t, dyn, gvrSecret, "ak-one", name)
	if tok, _, _ := unstructured.NestedString(sec.Object, "data", "token"); tok == "" {
		t.Errorf("secret has no token")
	}

	// Unchanged: no write reaches the API server.
	n := cnt.n.Load()
	start = time.Now()
	for range 3 {
		res, err := k.Apply(ctx, in)
		if err != nil || res.Writes() != 0 {
			t.Fatalf("no-op apply: %+v, %v", res, err)
		}
	}
	t.Logf("no-op apply took %v", time.Since(start)/3)
	if w, calls := cnt.since(n); w != 0 {
		t.Fatalf("no-op applies made %d writes: %v", w, calls)
	}

	// kubernetes_replicas: the Deployment alone is applied.
	in.Settings.KubernetesReplicas = 3
	n = cnt.n.Load()
	res, err = k.Apply(ctx, in)
	if err != nil || !slices.Equal(res.Updated, []string{"Deployment ak-one/" + name}) || len(res.Created)+len(res.Removed) != 0 {
		t.Fatalf("replicas: %+v, %v", res, err)
	}
	if w, calls := cnt.since(n); w != 1 {
		t.Errorf("a replica change made %d writes: %v", w, calls)
	}
	if r, _, _ := unstructured.NestedInt64(get(t, dyn, gvrDeployment, "ak-one", name).Object, "spec", "replicas"); r != 3 {
		t.Errorf("replicas %d after the change", r)
	}

	// A field the settings stop setting is removed from the live object.
	in.Settings.KubernetesImagePullSecrets = []string{"regcred"}
	if res, err := k.Apply(ctx, in); err != nil || !slices.Equal(res.Updated, []string{"Deployment ak-one/" + name}) {
		t.Fatalf("pull secrets: %+v, %v", res, err)
	}
	in.Settings.KubernetesImagePullSecrets = nil
	if res, err := k.Apply(ctx, in); err != nil || !slices.Equal(res.Updated, []string{"Deployment ak-one/" + name}) {
		t.Fatalf("no pull secrets: %+v, %v", res, err)
	}
	if ps, found, _ := unstructured.NestedSlice(get(t, dyn, gvrDeployment, "ak-one", name).Object, "spec", "template", "spec", "imagePullSecrets"); found {
		t.Errorf("imagePullSecrets left behind: %v", ps)
	}

	// A disabled component is deleted.
	in.Settings.KubernetesDisabledComponents = []string{deploy.ComponentIngress}
	res, err = k.Apply(ctx, in)
	if err != nil || !slices.Equal(res.Removed, []string{"Ingress ak-one/" + name}) {
		t.Fatalf("disable ingress: %+v, %v", res, err)
	}
	absent(t, dyn, gvrIngress, "ak-one", name)

	// The ServiceMonitor's CRD appears: the next reconcile creates it.
	installServiceMonitorCRD(t, dyn)
	res, err = k.Apply(ctx, in)
	if err != nil || !slices.Equal(res.Created, []string{"ServiceMonitor ak-one/" + name}) {
		t.Fatalf("with the CRD: %+v, %v", res, err)
	}
	get(t, dyn, gvrSM, "ak-one", name)

	// A hand-deleted object comes back.
	if err := dyn.Resource(gvrService).Namespace("ak-one").Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if res, err = k.Apply(ctx, in); err != nil || !slices.Equal(res.Created, []string{"Service ak-one/" + name}) {
		t.Fatalf("restore: %+v, %v", res, err)
	}

	// kubernetes_namespace: created in the new namespace, removed from the old.
	in.Settings.KubernetesNamespace = "ak-two"
	res, err = k.Apply(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Created) != 5 || len(res.Removed) != 5 {
		t.Fatalf("namespace move: %+v", res)
	}
	for _, r := range res.Removed {
		if !strings.Contains(r, " ak-one/") {
			t.Errorf("removed %s", r)
		}
	}
	absent(t, dyn, gvrDeployment, "ak-one", name)
	get(t, dyn, gvrDeployment, "ak-two", name)

	// A foreign object of the outpost (authentik's labels, not ours) and
	// another connection's objects stay when the outpost is deleted.
	foreign := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Secret",
		"metadata": map[string]any{"name": "foreign", "namespace": "ak-two", "labels": map[string]any{
			"goauthentik.io/outpost-uuid": "aaaaaaaa93c54d6ab7e05f21c8d9a3b4"}},
	}}
	if _, err := dyn.Resource(gvrSecret).Namespace("ak-two").Create(ctx, foreign, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		dyn.Resource(gvrSecret).Namespace("ak-two").Delete(context.Background(), "foreign", metav1.DeleteOptions{})
	})
	other := newKube(t, a, nil, "kconn-other")
	in2 := in
	in2.Settings.ObjectNamingTemplate = "other-%(name)s"
	in2.Settings.KubernetesDisabledComponents = []string{deploy.ComponentIngress, deploy.ComponentDeployment,
		deploy.ComponentService, deploy.ComponentServiceMetrics, deploy.ComponentServiceMonitor, deploy.ComponentTraefikMiddleware}
	if _, err := other.Apply(ctx, in2); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Delete(context.Background(), in.UUID) })

	res, err = k.Delete(ctx, in.UUID)
	if err != nil || len(res.Removed) != 5 {
		t.Fatalf("Delete: %+v, %v", res, err)
	}
	get(t, dyn, gvrSecret, "ak-two", "foreign")
	get(t, dyn, gvrSecret, "ak-two", "other-proxy-ak-one")
	if left, err := k.Outposts(ctx); err != nil || len(left) != 0 {
		t.Fatalf("after Delete: %v, %v", left, err)
	}
	if left, err := other.Outposts(ctx); err != nil || !slices.Equal(left, []string{"aaaaaaaa93c54d6ab7e05f21c8d9a3b4"}) {
		t.Fatalf("other connection: %v, %v", left, err)
	}
}

func installServiceMonitorCRD(t *testing.T, dyn dynamic.Interface) {
	t.Helper()
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "servicemonitors.monitoring.coreos.com"},
		"spec": map[string]any{
			"group": "monitoring.coreos.com",
			"names": map[string]any{"kind": "ServiceMonitor", "listKind": "ServiceMonitorList", "plural": "servicemonitors", "singular": "servicemonitor"},
			"scope": "Namespaced",
			"versions": []any{map[string]any{
				"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{
					"type": "object", "x-kubernetes-preserve-unknown-fields": true,
				}},
			}},
		},
	}}
	ctx := context.Background()
	if _, err := dyn.Resource(gvrCRD).Create(ctx, crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	// The API server is shared by the package's tests (and by -count runs):
	// leave it without the CRD, as it started.
	t.Cleanup(func() {
		dyn.Resource(gvrCRD).Delete(context.Background(), "servicemonitors.monitoring.coreos.com", metav1.DeleteOptions{})
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if _, err := dyn.Resource(gvrCRD).Get(context.Background(), "servicemonitors.monitoring.coreos.com", metav1.GetOptions{}); apierrors.IsNotFound(err) {
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := dyn.Resource(gvrSM).Namespace("default").List(ctx, metav1.ListOptions{})
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the ServiceMonitor CRD was not served within 30s: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Another field manager that set a field we set to another value makes a
// clear conflict error and no change; ForceConflicts takes it over. An
// object of our name that we did not create is never touched.
func TestKubernetesConflictsAndForeignObjects(t *testing.T) {
	a := kubeAPI(t)
	dyn := admin(t, a)
	ctx := contextTimeout(t, 2*time.Minute)
	createNamespace(t, dyn, "ak-three")
	k := newKube(t, a, nil, "kconn-b")
	in := kubeInput("bbbbbbbb-93c5-4d6a-b7e0-5f21c8d9a3b4", "ak-three")
	in.Settings.KubernetesDisabledComponents = []string{deploy.ComponentIngress}
	t.Cleanup(func() { k.Delete(context.Background(), in.UUID) })
	name := "ak-outpost-proxy-ak-three"
	if _, err := k.Apply(ctx, in); err != nil {
		t.Fatal(err)
	}

	// Someone else applies replicas: 5 with their own manager.
	patch := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": name, "namespace": "ak-three"},
		"spec":     map[string]any{"replicas": int64(5)},
	}}
	if _, err := dyn.Resource(gvrDeployment).Namespace("ak-three").Apply(ctx, name, patch, metav1.ApplyOptions{FieldManager: "someone-else", Force: true}); err != nil {
		t.Fatal(err)
	}
	_, err := k.Apply(ctx, in)
	if err == nil || !strings.Contains(err.Error(), "conflict") || strings.Contains(err.Error(), in.Token) {
		t.Fatalf("conflict: %v", err)
	}
	if r, _, _ := unstructured.NestedInt64(get(t, dyn, gvrDeployment, "ak-three", name).Object, "spec", "replicas"); r != 5 {
		t.Errorf("replicas %d after a refused apply", r)
	}
	forced, err := NewKubernetes(KubernetesConfig{REST: a.restConfig(t, nil), Connection: "kconn-b", ForceConflicts: true})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := forced.Apply(ctx, in); err != nil || !slices.Equal(res.Updated, []string{"Deployment ak-three/" + name}) {
		t.Fatalf("forced: %+v, %v", res, err)
	}
	if r, _, _ := unstructured.NestedInt64(get(t, dyn, gvrDeployment, "ak-three", name).Object, "spec", "replicas"); r != 1 {
		t.Errorf("replicas %d after a forced apply", r)
	}

	// An Ingress of our name that we did not create.
	in.Settings.KubernetesDisabledComponents = nil
	foreign := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
		"metadata": map[string]any{"name": name, "namespace": "ak-three"},
		"spec":     map[string]any{"defaultBackend": map[string]any{"service": map[string]any{"name": "x", "port": map[string]any{"number": int64(80)}}}},
	}}
	if _, err := dyn.Resource(gvrIngress).Namespace("ak-three").Create(ctx, foreign, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		dyn.Resource(gvrIngress).Namespace("ak-three").Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	before := get(t, dyn, gvrIngress, "ak-three", name).GetResourceVersion()
	if _, err := k.Apply(ctx, in); err == nil || !strings.Contains(err.Error(), "did not create") {
		t.Fatalf("foreign ingress: %v", err)
	}
	if got := get(t, dyn, gvrIngress, "ak-three", name); got.GetResourceVersion() != before {
		t.Fatal("the foreign Ingress was changed")
	}
	if _, err := k.Delete(ctx, in.UUID); err != nil {
		t.Fatal(err)
	}
	get(t, dyn, gvrIngress, "ak-three", name)
}

func TestKubernetesConnectionErrors(t *testing.T) {
	if _, err := NewKubernetes(KubernetesConfig{Kubeconfig: []byte("this: [is not a kubeconfig"), Connection: "x"}); err == nil {
		t.Fatal("an invalid kubeconfig was accepted")
	}
	const kc = `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: very-secret-bearer}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`
	k, err := NewKubernetes(KubernetesConfig{Kubeconfig: []byte(kc), Connection: "x"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = k.Apply(ctx, kubeInput("cccccccc-93c5-4d6a-b7e0-5f21c8d9a3b4", "x"))
	if err == nil || strings.Contains(err.Error(), "very-secret-bearer") || strings.Contains(err.Error(), "kube-secret-token") {
		t.Fatalf("unreachable server: %v", err)
	}
}
