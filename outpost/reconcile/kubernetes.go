package reconcile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/akoutpost/akoutpost/outpost/deploy"
)

// FieldManager is the server-side apply field manager the Kubernetes
// reconciler applies as unless KubernetesConfig.FieldManager says otherwise.
const FieldManager = "akoutpost"

// labelOutpostK8s is authentik's outpost label on Kubernetes objects.
const labelOutpostK8s = "goauthentik.io/outpost-uuid"

// ownedKinds are the kinds the renderer makes; the reconciler looks for
// objects it owns among them to remove those the settings no longer ask for.
var ownedKinds = []schema.GroupVersionKind{
	{Version: "v1", Kind: "Secret"},
	{Group: "apps", Version: "v1", Kind: "Deployment"},
	{Version: "v1", Kind: "Service"},
	{Group: "monitoring.coreos.com", Version: "v1", Kind: "ServiceMonitor"},
	{Group: "networking.k8s.io", Version: "v1", Kind: "Ingress"},
	{Group: "gateway.networking.k8s.io", Version: "v1", Kind: "HTTPRoute"},
	{Group: "traefik.io", Version: "v1alpha1", Kind: "Middleware"},
}

// KubernetesConfig says how to reach a cluster, as authentik's Kubernetes
// service connection does.
type KubernetesConfig struct {
	// Kubeconfig is a kubeconfig file's content; its current context is
	// used. Empty means the in-cluster configuration (authentik's "local").
	Kubeconfig []byte
	// InsecureSkipTLSVerify turns off verification of the API server's
	// certificate (the connection's verify_ssl set to false).
	InsecureSkipTLSVerify bool
	// REST, when set, is used instead of Kubeconfig: a host that already
	// has a client configuration passes it here.
	REST *rest.Config
	// Connection names the integration (the service connection's primary
	// key). It is written to LabelConnection on every object, and only
	// objects carrying the same value are changed or removed.
	Connection string
	// FieldManager is the server-side apply field manager; empty means
	// FieldManager.
	FieldManager string
	// ForceConflicts takes over fields another field manager set to other
	// values. Off by default: such a conflict is reported as an error
	// naming the other manager, and the object is left as it is.
	ForceConflicts bool
	// Logger receives one line per change; nil discards.
	Logger *slog.Logger
}

// Kubernetes applies outposts' objects to one cluster with server-side
// apply. Its methods are safe for concurrent use on different outposts.
type Kubernetes struct {
	dyn        dynamic.Interface
	disc       discovery.DiscoveryInterface
	connection string
	manager    string
	force      bool
	log        *slog.Logger
}

// NewKubernetes checks cfg and builds the clients. It contacts no server;
// with an empty Kubeconfig it reads the in-cluster service account files.
func NewKubernetes(cfg KubernetesConfig) (*Kubernetes, error) {
	if cfg.Connection == "" {
		return nil, errors.New("reconcile: kubernetes: Connection is empty")
	}
	rc := cfg.REST
	if rc == nil {
		var err error
		if len(cfg.Kubeconfig) > 0 {
			rc, err = clientcmd.RESTConfigFromKubeConfig(cfg.Kubeconfig)
			if err != nil {
				// clientcmd's errors name fields and files, not their values.
				return nil, fmt.Errorf("reconcile: kubernetes: the kubeconfig is invalid: %w", err)
			}
		} else if rc, err = rest.InClusterConfig(); err != nil {
			return nil, fmt.Errorf("reconcile: kubernetes: in-cluster configuration: %w", err)
		}
	}
	rc = rest.CopyConfig(rc)
	if cfg.InsecureSkipTLSVerify {
		rc.Insecure = true
		rc.CAData, rc.CAFile = nil, ""
	}
	if rc.QPS == 0 {
		// client-go's default of 5 requests per second throttles a
		// reconcile (a read per object, a list per kind) to seconds.
		rc.QPS, rc.Burst = 50, 100
	}
	if rc.UserAgent == "" {
		rc.UserAgent = "akoutpost-controller"
	}
	httpClient, err := rest.HTTPClientFor(rc)
	if err != nil {
		return nil, fmt.Errorf("reconcile: kubernetes: %w", err)
	}
	dyn, err := dynamic.NewForConfigAndClient(rc, httpClient)
	if err != nil {
		return nil, fmt.Errorf("reconcile: kubernetes: %w", err)
	}
	disc, err := discovery.NewDiscoveryClientForConfigAndClient(rc, httpClient)
	if err != nil {
		return nil, fmt.Errorf("reconcile: kubernetes: %w", err)
	}
	manager := cfg.FieldManager
	if manager == "" {
		manager = FieldManager
	}
	return &Kubernetes{dyn: dyn, disc: disc, connection: cfg.Connection, manager: manager,
		force: cfg.ForceConflicts, log: orDiscard(cfg.Logger)}, nil
}

// Version asks the API server for its version, which is how authentik
// checks a Kubernetes service connection.
func (k *Kubernetes) Version(ctx context.Context) (string, error) {
	v, err := k.disc.ServerVersion()
	if err != nil {
		return "", fmt.Errorf("reconcile: kubernetes: %w", err)
	}
	return v.GitVersion, nil
}

// resolver maps kinds to resources through discovery, asking once per
// group version and reconcile.
type resolver struct {
	disc  discovery.DiscoveryInterface
	known map[string]*metav1.APIResourceList // by group version; nil: absent
}

type resource struct {
	gvr        schema.GroupVersionResource
	namespaced bool
}

// errNoKind means the cluster does not serve the kind (no CRD).
var errNoKind = errors.New("the cluster does not serve this kind")

func (r *resolver) resolve(gvk schema.GroupVersionKind) (resource, error) {
	gv := gvk.GroupVersion().String()
	list, seen := r.known[gv]
	if !seen {
		var err error
		list, err = r.disc.ServerResourcesForGroupVersion(gv)
		if apierrors.IsNotFound(err) {
			list, err = nil, nil
		}
		if err != nil {
			return resource{}, fmt.Errorf("discovery of %s: %w", gv, err)
		}
		r.known[gv] = list
	}
	if list != nil {
		for _, res := range list.APIResources {
			if res.Kind == gvk.Kind && !strings.Contains(res.Name, "/") {
				return resource{gvr: gvk.GroupVersion().WithResource(res.Name), namespaced: res.Namespaced}, nil
			}
		}
	}
	return resource{}, errNoKind
}

// Apply makes the cluster hold the outpost's objects as the settings
// render them. For each object it reads the live one and applies (server-
// side apply, field manager FieldManager) only when a field the settings
// set differs or the object is missing, so an unchanged outpost costs reads
// only. Objects of kinds the cluster does not serve (a custom resource
// definition it lacks) are skipped and reported in Result.Skipped. Objects
// of this outpost and integration that the settings no longer ask for (a
// disabled component, an old namespace or name) are deleted afterwards.
// An object of the same name that this integration did not create is left
// alone and reported in the error.
func (k *Kubernetes) Apply(ctx context.Context, in deploy.Input) (Result, error) {
	var res Result
	objs, err := deploy.KubernetesObjects(in)
	if err != nil {
		return res, err
	}
	rs := &resolver{disc: k.disc, known: map[string]*metav1.APIResourceList{}}
	want := map[string]bool{}
	var errs []error
	uuidHex := ""
	for _, o := range objs {
		u := &unstructured.Unstructured{Object: o.Object}
		labels := u.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		uuidHex = labels[labelOutpostK8s]
		labels[LabelManagedBy] = ManagedBy
		labels[LabelConnection] = k.connection
		u.SetLabels(labels)
		// A digest of the rendered object in an annotation: a field the
		// settings stop setting leaves the live object a superset of the
		// new one, and only the changed digest makes the apply that
		// removes it.
		annotations := u.GetAnnotations()
		if annotations == nil {
			annotations = map[string]string{}
		}
		annotations[LabelSpec] = objectDigest(u.Object)
		u.SetAnnotations(annotations)
		ref := objectRef(u)
		want[ref] = true
		r, err := rs.resolve(u.GroupVersionKind())
		if errors.Is(err, errNoKind) {
			res.Skipped = append(res.Skipped, Skip{Object: ref, Reason: "the cluster has no custom resource definition for " + u.GetAPIVersion() + " " + u.GetKind()})
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ref, err))
			continue
		}
		changed, created, err := k.applyOne(ctx, r, u)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", ref, err))
		case created:
			res.Created = append(res.Created, ref)
			k.log.Info("created object", "object", ref)
		case changed:
			res.Updated = append(res.Updated, ref)
			k.log.Info("applied object", "object", ref)
		}
	}
	if len(errs) == 0 && uuidHex != "" {
		removed, err := k.deleteOwned(ctx, rs, uuidHex, want)
		res.Removed = append(res.Removed, removed...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return res, fmt.Errorf("reconcile: kubernetes: %s", redact(err.Error(), in.Token))
	}
	return res, nil
}

// applyOne applies u when the live object lacks what u sets. It reports
// whether it wrote and whether the object was new.
func (k *Kubernetes) applyOne(ctx context.Context, r resource, u *unstructured.Unstructured) (changed, created bool, err error) {
	client := k.client(r, u.GetNamespace())
	live, err := client.Get(ctx, u.GetName(), metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		created = true
	case err != nil:
		return false, false, err
	default:
		l := live.GetLabels()
		if l[LabelManagedBy] != ManagedBy || l[LabelConnection] != k.connection {
			return false, false, errors.New("the object exists and this integration did not create it; rename or remove it")
		}
		if contains(live.Object, u.Object) {
			return false, false, nil
		}
	}
	_, err = client.Apply(ctx, u.GetName(), u, metav1.ApplyOptions{FieldManager: k.manager, Force: k.force})
	if apierrors.IsConflict(err) {
		return false, false, fmt.Errorf("server-side apply conflict (another field manager owns fields it sets; set ForceConflicts to take them over): %w", err)
	}
	if err != nil {
		return false, false, err
	}
	return true, created, nil
}

func (k *Kubernetes) client(r resource, namespace string) dynamic.ResourceInterface {
	if r.namespaced {
		return k.dyn.Resource(r.gvr).Namespace(namespace)
	}
	return k.dyn.Resource(r.gvr)
}

// Delete removes every object this integration created for the outpost
// with the given UUID (with or without dashes), in every namespace.
func (k *Kubernetes) Delete(ctx context.Context, outpostUUID string) (Result, error) {
	rs := &resolver{disc: k.disc, known: map[string]*metav1.APIResourceList{}}
	removed, err := k.deleteOwned(ctx, rs, strings.ReplaceAll(outpostUUID, "-", ""), nil)
	return Result{Removed: removed}, err
}

// Outposts returns the UUIDs (hex) of the outposts with objects of this
// integration in the cluster.
func (k *Kubernetes) Outposts(ctx context.Context) ([]string, error) {
	rs := &resolver{disc: k.disc, known: map[string]*metav1.APIResourceList{}}
	var out []string
	err := k.eachOwned(ctx, rs, "", func(_ resource, u unstructured.Unstructured) error {
		if id := u.GetLabels()[labelOutpostK8s]; id != "" && !slices.Contains(out, id) {
			out = append(out, id)
		}
		return nil
	})
	slices.Sort(out)
	return out, err
}

// deleteOwned deletes the outpost's objects of this integration that keep
// is not holding.
func (k *Kubernetes) deleteOwned(ctx context.Context, rs *resolver, uuidHex string, keep map[string]bool) ([]string, error) {
	var removed []string
	err := k.eachOwned(ctx, rs, uuidHex, func(r resource, u unstructured.Unstructured) error {
		ref := objectRef(&u)
		if keep[ref] {
			return nil
		}
		policy := metav1.DeletePropagationBackground
		uid := u.GetUID()
		err := k.client(r, u.GetNamespace()).Delete(ctx, u.GetName(), metav1.DeleteOptions{
			PropagationPolicy: &policy,
			// Only the object that was listed: never one someone
			// re-created under the same name meanwhile.
			Preconditions: &metav1.Preconditions{UID: &uid},
		})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting %s: %w", ref, err)
		}
		removed = append(removed, ref)
		k.log.Info("deleted object", "object", ref)
		return nil
	})
	if err != nil {
		return removed, fmt.Errorf("reconcile: kubernetes: %w", err)
	}
	return removed, nil
}

// eachOwned calls fn for every object of this integration (of one outpost
// when uuidHex is set) of the kinds the cluster serves.
func (k *Kubernetes) eachOwned(ctx context.Context, rs *resolver, uuidHex string, fn func(resource, unstructured.Unstructured) error) error {
	sel := LabelManagedBy + "=" + ManagedBy + "," + LabelConnection + "=" + k.connection
	if uuidHex != "" {
		sel += "," + labelOutpostK8s + "=" + uuidHex
	}
	for _, gvk := range ownedKinds {
		r, err := rs.resolve(gvk)
		if errors.Is(err, errNoKind) {
			continue
		}
		if err != nil {
			return err
		}
		list, err := k.dyn.Resource(r.gvr).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return fmt.Errorf("listing %s: %w", r.gvr.Resource, err)
		}
		for _, u := range list.Items {
			if err := fn(r, u); err != nil {
				return err
			}
		}
	}
	return nil
}

// objectRef names an object as "Kind namespace/name".
func objectRef(u *unstructured.Unstructured) string {
	if u.GetNamespace() == "" {
		return u.GetKind() + " " + u.GetName()
	}
	return u.GetKind() + " " + u.GetNamespace() + "/" + u.GetName()
}

// contains reports whether live holds every field of want with the same
// value: maps may have more keys (defaults the server filled in), lists
// must have the same length with each element contained.
func contains(live, want any) bool {
	switch w := want.(type) {
	case map[string]any:
		l, ok := live.(map[string]any)
		if !ok {
			return false
		}
		for k, wv := range w {
			lv, ok := l[k]
			if !ok {
				if isEmpty(wv) {
					continue
				}
				return false
			}
			if !contains(lv, wv) {
				return false
			}
		}
		return true
	case []any:
		l, ok := live.([]any)
		if !ok || len(l) != len(w) {
			return false
		}
		for i := range w {
			if !contains(l[i], w[i]) {
				return false
			}
		}
		return true
	case nil:
		return live == nil
	default:
		return sameScalar(live, want)
	}
}

// sameScalar compares JSON scalars; numbers may be int64 on one side and
// float64 on the other.
func sameScalar(a, b any) bool {
	na, oka := number(a)
	nb, okb := number(b)
	if oka && okb {
		return na == nb
	}
	return a == b
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case int64:
		return float64(n), true
	case int:
		return float64(n), true
	case int32:
		return float64(n), true
	case float64:
		return n, true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

func isEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case bool:
		return !x
	case map[string]any:
		return len(x) == 0
	case []any:
		return len(x) == 0
	}
	return false
}

// redact removes a secret from an error text.
func redact(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, "[redacted]")
}

// objectDigest hashes a rendered object (before its digest annotation).
func objectDigest(obj map[string]any) string {
	raw, _ := json.Marshal(obj) // a JSON tree: Marshal cannot fail
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:16])
}
