package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// Component names, as kubernetes_disabled_components and the keys of
// kubernetes_json_patches name them (authentik's reconciler names).
const (
	ComponentSecret            = "secret"
	ComponentDeployment        = "deployment"
	ComponentService           = "service"
	ComponentServiceMetrics    = "service-metrics"
	ComponentServiceMonitor    = "prometheus servicemonitor"
	ComponentIngress           = "ingress"
	ComponentHTTPRoute         = "httproute"
	ComponentTraefikMiddleware = "traefik middleware"
)

// components is authentik's reconcile order; the manifest follows it so that
// the Secret exists before the Deployment that reads it.
var components = []string{
	ComponentSecret, ComponentDeployment, ComponentService, ComponentServiceMetrics,
	ComponentServiceMonitor, ComponentIngress, ComponentHTTPRoute, ComponentTraefikMiddleware,
}

const (
	metricsPort     = 9300
	metricsPortName = "http-metrics"
	// HealthPath is the outpost's health endpoint on the metrics port.
	HealthPath = "/outpost.goauthentik.io/ping"
)

// Kubernetes renders the outpost's Kubernetes objects as multi-document
// YAML, in authentik's order: Secret, Deployment, Service, metrics Service,
// ServiceMonitor and, for proxy outposts, Ingress, HTTPRoute and Traefik
// Middleware. An object is left out when its component is named in
// kubernetes_disabled_components, and where authentik would not create it:
// no Service for rac, no Ingress without proxy providers, no HTTPRoute
// without parent refs, no Middleware without a forward-auth provider.
//
// Two things differ from authentik 2026.2, on purpose: the Deployment's
// container has readiness and liveness probes on the health endpoint
// (authentik sets none; remove them with a JSON patch if needed), and the
// metrics port is served by a separate ClusterIP Service named
// "<name[:55]>-metrics" that the ServiceMonitor selects, as authentik 2026.5
// does, so kubernetes_service_type never exposes the unauthenticated metrics.
func Kubernetes(in Input) ([]byte, error) {
	objs, err := KubernetesObjects(in)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	for _, o := range objs {
		y, err := yaml.Marshal(o.Object)
		if err != nil {
			return nil, fmt.Errorf("deploy: %s: writing YAML: %w", o.Component, err)
		}
		if out.Len() > 0 {
			out.WriteString("---\n")
		}
		out.Write(y)
	}
	return out.Bytes(), nil
}

// KubernetesObject is one rendered object: the component that makes it (one
// of the Component constants) and the object as a JSON tree, with
// kubernetes_json_patches applied.
type KubernetesObject struct {
	Component string
	Object    map[string]any
}

// KubernetesObjects returns the objects Kubernetes writes, in the same
// order, as JSON trees a client can apply.
func KubernetesObjects(in Input) ([]KubernetesObject, error) {
	p, err := in.prepare()
	if err != nil {
		return nil, err
	}
	name, err := p.objectName()
	if err != nil {
		return nil, err
	}
	var out []KubernetesObject
	for _, c := range components {
		if p.disabled(c) {
			continue
		}
		obj := p.build(c, name)
		if obj == nil {
			continue
		}
		doc, err := toDocument(obj)
		if err != nil {
			return nil, fmt.Errorf("deploy: %s: %w", c, err)
		}
		if ops, ok := p.patches[c]; ok {
			if doc, err = applyPatch(doc, ops); err != nil {
				return nil, fmt.Errorf("deploy: kubernetes_json_patches[%q]: %w", c, err)
			}
		}
		m, ok := doc.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("deploy: kubernetes_json_patches[%q] made the object a %T, not an object", c, doc)
		}
		out = append(out, KubernetesObject{Component: c, Object: m})
	}
	return out, nil
}

// Components are the component names in authentik's reconcile order.
func Components() []string { return append([]string(nil), components...) }

// build returns the component's object, or nil when authentik would not
// create it for this outpost.
func (p *prepared) build(c, name string) any {
	switch c {
	case ComponentSecret:
		return p.secret(name)
	case ComponentDeployment:
		return p.deployment(name)
	case ComponentService:
		if p.in.Type == TypeRAC {
			return nil
		}
		return p.service(name)
	case ComponentServiceMetrics:
		return p.metricsService(name)
	case ComponentServiceMonitor:
		return p.serviceMonitor(name)
	}
	if p.in.Type != TypeProxy {
		return nil
	}
	switch c {
	case ComponentIngress:
		if len(p.in.ProxyProviders) == 0 {
			return nil
		}
		return p.ingress(name)
	case ComponentHTTPRoute:
		if len(p.refs) == 0 {
			return nil
		}
		return p.httpRoute(name)
	case ComponentTraefikMiddleware:
		if !p.hasForwardAuth() {
			return nil
		}
		return p.traefikMiddleware(name)
	}
	return nil
}

// port is authentik's DeploymentPort: the port a Service or the host
// publishes, and the container's port when it differs.
type port struct {
	port     int32
	name     string
	protocol string
	inner    int32
}

func (pt port) target() int32 {
	if pt.inner != 0 {
		return pt.inner
	}
	return pt.port
}

// kubernetesPorts are the container ports of each type (authentik 2026.2).
func kubernetesPorts(typ string) []port {
	switch typ {
	case TypeProxy:
		return []port{{9000, "http", "TCP", 0}, {metricsPort, metricsPortName, "TCP", 0}, {9443, "https", "TCP", 0}}
	case TypeLDAP:
		return []port{{389, "ldap", "TCP", 3389}, {636, "ldaps", "TCP", 6636}, {metricsPort, metricsPortName, "TCP", 0}}
	case TypeRadius:
		return []port{{1812, "radius", "UDP", 0}}
	}
	return nil
}

// commonLabels are the labels authentik puts on every object.
func (p *prepared) commonLabels() map[string]string {
	l := map[string]string{
		"app.kubernetes.io/instance":   labelValue(p.slug),
		"app.kubernetes.io/managed-by": "goauthentik.io",
		"app.kubernetes.io/name":       "authentik-" + p.in.Type,
		"goauthentik.io/outpost-name":  labelValue(p.slug),
		"goauthentik.io/outpost-type":  p.in.Type,
		"goauthentik.io/outpost-uuid":  p.uuidHex,
	}
	if v := labelValue(p.version); v != "" {
		l["app.kubernetes.io/version"] = v
	}
	return l
}

// podLabels select the outpost's pods.
func (p *prepared) podLabels() map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":       "authentik-outpost-" + p.in.Type,
		"app.kubernetes.io/managed-by": "goauthentik.io",
		"goauthentik.io/outpost-uuid":  p.uuidHex,
		"goauthentik.io/outpost-name":  labelValue(p.slug),
		"goauthentik.io/outpost-type":  p.in.Type,
	}
}

func (p *prepared) meta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: p.namespace, Labels: p.commonLabels()}
}

func (p *prepared) secret(name string) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: p.meta(name),
		Data: map[string][]byte{
			"authentik_host": []byte(p.s.AuthentikHost),
			// Python's str(bool), as authentik writes it; the outpost
			// parses it with strconv.ParseBool, which accepts both cases.
			"authentik_host_insecure": []byte(pyBool(p.s.AuthentikHostInsecure)),
			"token":                   []byte(p.in.Token),
			"authentik_host_browser":  []byte(p.s.AuthentikHostBrowser),
		},
	}
}

func pyBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

func (p *prepared) deployment(name string) *appsv1.Deployment {
	var ports []corev1.ContainerPort
	for _, pt := range kubernetesPorts(p.in.Type) {
		ports = append(ports, corev1.ContainerPort{ContainerPort: pt.target(), Name: pt.name, Protocol: corev1.Protocol(pt.protocol)})
	}
	var pullSecrets []corev1.LocalObjectReference
	for _, s := range p.s.KubernetesImagePullSecrets {
		pullSecrets = append(pullSecrets, corev1.LocalObjectReference{Name: s})
	}
	env := func(envName, key string) corev1.EnvVar {
		return corev1.EnvVar{Name: envName, ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: key},
		}}
	}
	templateLabels := p.podLabels()
	if p.version != "" {
		v := labelValue(p.version)
		templateLabels["app.kubernetes.io/version"] = v
		templateLabels["version"] = v
	}
	templateLabels["app"] = "authentik-outpost"
	// The health endpoint answers on the metrics port whatever the type
	// (radius and rac declare no container port for it), so the probes use
	// the number rather than a port name.
	probe := func() *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: HealthPath, Port: intstr.FromInt32(metricsPort),
		}}}
	}
	replicas := p.replicas
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: p.meta(name),
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: p.podLabels()},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: templateLabels},
				Spec: corev1.PodSpec{
					ImagePullSecrets: pullSecrets,
					SecurityContext: &corev1.PodSecurityContext{
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{{
						Name:  p.in.Type,
						Image: p.image,
						Ports: ports,
						Env: []corev1.EnvVar{
							env("AUTHENTIK_HOST", "authentik_host"),
							env("AUTHENTIK_HOST_BROWSER", "authentik_host_browser"),
							env("AUTHENTIK_TOKEN", "token"),
							env("AUTHENTIK_INSECURE", "authentik_host_insecure"),
						},
						ReadinessProbe: probe(),
						LivenessProbe:  probe(),
						SecurityContext: &corev1.SecurityContext{
							RunAsNonRoot:             ptr(true),
							AllowPrivilegeEscalation: ptr(false),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
					}},
				},
			},
		},
	}
}

func ptr[T any](v T) *T { return &v }

func (p *prepared) service(name string) *corev1.Service {
	var ports []corev1.ServicePort
	for _, pt := range kubernetesPorts(p.in.Type) {
		if pt.name == metricsPortName {
			continue // served by the metrics Service only
		}
		ports = append(ports, corev1.ServicePort{
			Name: pt.name, Port: pt.port, Protocol: corev1.Protocol(pt.protocol), TargetPort: intstr.FromInt32(pt.target()),
		})
	}
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: p.meta(name),
		Spec: corev1.ServiceSpec{
			Ports:    ports,
			Selector: p.podLabels(),
			Type:     corev1.ServiceType(p.s.KubernetesServiceType),
		},
	}
}

// metricsServiceName is authentik 2026.5's: the name cut to 55 characters so
// the suffix keeps it within 63.
func metricsServiceName(name string) string {
	if len(name) > 55 {
		name = name[:55]
	}
	return name + "-metrics"
}

func (p *prepared) metricsLabels() map[string]string {
	l := p.commonLabels()
	l["goauthentik.io/service-type"] = "metrics"
	return l
}

func (p *prepared) metricsService(name string) *corev1.Service {
	meta := p.meta(metricsServiceName(name))
	meta.Labels = p.metricsLabels()
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: meta,
		Spec: corev1.ServiceSpec{
			Ports: []corev1.ServicePort{{
				Name: metricsPortName, Port: metricsPort, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(metricsPort),
			}},
			Selector: p.podLabels(),
			Type:     corev1.ServiceTypeClusterIP,
		},
	}
}

func (p *prepared) ingress(name string) *networkingv1.Ingress {
	annotations := map[string]string{
		// Keep one browser on one replica: the login's state lives in the
		// replica that started it.
		"nginx.ingress.kubernetes.io/affinity":   "cookie",
		"traefik.ingress.kubernetes.io/affinity": "true",
		// The JWTs in the response headers need large buffers.
		"nginx.ingress.kubernetes.io/proxy-buffers-number":    "4",
		"nginx.ingress.kubernetes.io/proxy-buffer-size":       "16k",
		"nginx.ingress.kubernetes.io/proxy-busy-buffers-size": "32k",
		"traefik.ingress.kubernetes.io/router.tls":            "true",
	}
	for k, v := range p.s.KubernetesIngressAnnotations {
		annotations[k] = v
	}
	pathType := networkingv1.PathTypePrefix
	if p.s.KubernetesIngressPathType != "" {
		pathType = networkingv1.PathType(p.s.KubernetesIngressPathType)
	}
	var rules []networkingv1.IngressRule
	var tlsHosts []string
	for _, pp := range p.in.ProxyProviders {
		u, _ := url.Parse(pp.ExternalHost) // checked by prepare
		host := strings.ToLower(u.Hostname())
		if u.Scheme == "https" && p.s.KubernetesIngressSecretName != "" {
			tlsHosts = append(tlsHosts, host)
		}
		rules = append(rules, networkingv1.IngressRule{
			Host: host,
			IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
				Paths: []networkingv1.HTTPIngressPath{{
					Path:     routePath(pp.Mode),
					PathType: &pathType,
					Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
						Name: name, Port: networkingv1.ServiceBackendPort{Name: "http"},
					}},
				}},
			}},
		})
	}
	meta := p.meta(name)
	meta.Annotations = annotations
	spec := networkingv1.IngressSpec{Rules: rules}
	if len(tlsHosts) > 0 {
		spec.TLS = []networkingv1.IngressTLS{{Hosts: tlsHosts, SecretName: p.s.KubernetesIngressSecretName}}
	}
	if p.s.KubernetesIngressClassName != "" {
		spec.IngressClassName = ptr(p.s.KubernetesIngressClassName)
	}
	return &networkingv1.Ingress{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "Ingress"},
		ObjectMeta: meta,
		Spec:       spec,
	}
}

// routePath is what the Ingress or HTTPRoute sends to the outpost for a
// provider: everything in proxy mode, only the outpost's own paths in the
// forward-auth modes (the reverse proxy asks the outpost for the rest).
func routePath(mode string) string {
	if isForward(mode) {
		return "/outpost.goauthentik.io"
	}
	return "/"
}

func isForward(mode string) bool {
	return mode == ModeForwardSingle || mode == ModeForwardDomain
}

func (p *prepared) hasForwardAuth() bool {
	for _, pp := range p.in.ProxyProviders {
		if isForward(pp.Mode) {
			return true
		}
	}
	return false
}

// toDocument turns a typed object into the generic JSON tree that JSON
// patches apply to, without the empty fields the typed structs always
// serialise (creationTimestamp: null, status: {}, resources: {}).
func toDocument(obj any) (any, error) {
	raw, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	doc, err := decodeJSON(raw)
	if err != nil {
		return nil, err
	}
	return prune(doc), nil
}

func prune(v any) any {
	switch c := v.(type) {
	case map[string]any:
		for k, x := range c {
			x = prune(x)
			if m, ok := x.(map[string]any); x == nil || ok && len(m) == 0 {
				delete(c, k)
				continue
			}
			c[k] = x
		}
		return c
	case []any:
		for i := range c {
			c[i] = prune(c[i])
		}
		return c
	}
	return v
}
