package deploy

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The objects of custom resource definitions are small local structs: their
// Go types live in modules (prometheus-operator, gateway-api, traefik) this
// package does not need for three fields each.

// ServiceMonitor is the Prometheus operator's monitoring.coreos.com/v1 kind.
type serviceMonitor struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta  `json:"metadata"`
	Spec            serviceMonitorSpec `json:"spec"`
}

type serviceMonitorSpec struct {
	Endpoints []serviceMonitorEndpoint `json:"endpoints"`
	Selector  metav1.LabelSelector     `json:"selector"`
}

type serviceMonitorEndpoint struct {
	Port string `json:"port"`
	Path string `json:"path"`
}

func (p *prepared) serviceMonitor(name string) *serviceMonitor {
	return &serviceMonitor{
		TypeMeta: metav1.TypeMeta{APIVersion: "monitoring.coreos.com/v1", Kind: "ServiceMonitor"},
		Metadata: p.meta(name),
		Spec: serviceMonitorSpec{
			Endpoints: []serviceMonitorEndpoint{{Port: metricsPortName, Path: "/metrics"}},
			Selector:  metav1.LabelSelector{MatchLabels: p.metricsLabels()},
		},
	}
}

// traefikMiddleware is Traefik 3's traefik.io/v1alpha1 Middleware with a
// forwardAuth to the outpost.
type traefikMiddleware struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta     `json:"metadata"`
	Spec            traefikMiddlewareSpec `json:"spec"`
}

type traefikMiddlewareSpec struct {
	ForwardAuth traefikForwardAuth `json:"forwardAuth"`
}

type traefikForwardAuth struct {
	Address                  string   `json:"address"`
	AuthResponseHeaders      []string `json:"authResponseHeaders"`
	AuthResponseHeadersRegex string   `json:"authResponseHeadersRegex"`
	TrustForwardHeader       bool     `json:"trustForwardHeader"`
}

// authResponseHeaders are the headers Traefik copies from the outpost's
// answer to the upstream request (authentik 2026.2's list).
var authResponseHeaders = []string{
	"X-authentik-username",
	"X-authentik-groups",
	"X-authentik-entitlements",
	"X-authentik-email",
	"X-authentik-name",
	"X-authentik-uid",
	"X-authentik-jwt",
	"X-authentik-meta-jwks",
	"X-authentik-meta-outpost",
	"X-authentik-meta-provider",
	"X-authentik-meta-app",
	"X-authentik-meta-version",
}

func (p *prepared) traefikMiddleware(name string) *traefikMiddleware {
	return &traefikMiddleware{
		TypeMeta: metav1.TypeMeta{APIVersion: "traefik.io/v1alpha1", Kind: "Middleware"},
		Metadata: p.meta(name),
		Spec: traefikMiddlewareSpec{ForwardAuth: traefikForwardAuth{
			Address:             "http://" + name + "." + p.namespace + ":9000/outpost.goauthentik.io/auth/traefik",
			AuthResponseHeaders: append([]string(nil), authResponseHeaders...),
			TrustForwardHeader:  true,
		}},
	}
}

// parentRef is one Gateway API parentRef of the HTTPRoute, with the fields
// authentik reads from kubernetes_httproute_parent_refs. Kind and Group
// default to Gateway and gateway.networking.k8s.io.
type parentRef struct {
	Name        string `json:"name"`
	SectionName string `json:"sectionName,omitempty"`
	Port        *int32 `json:"port,omitempty"`
	Namespace   string `json:"namespace,omitempty"`
	Kind        string `json:"kind,omitempty"`
	Group       string `json:"group,omitempty"`
}

func parentRefsFromSettings(in []map[string]any) ([]parentRef, error) {
	raw, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("deploy: kubernetes_httproute_parent_refs: %w", err)
	}
	var refs []parentRef
	if err := json.Unmarshal(raw, &refs); err != nil {
		return nil, fmt.Errorf("deploy: kubernetes_httproute_parent_refs: %w", err)
	}
	for i, r := range refs {
		if r.Name == "" {
			return nil, fmt.Errorf("deploy: kubernetes_httproute_parent_refs[%d]: name is empty", i)
		}
	}
	return refs, nil
}

// httpRoute is the Gateway API's gateway.networking.k8s.io/v1 HTTPRoute.
type httpRoute struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            httpRouteSpec     `json:"spec"`
}

type httpRouteSpec struct {
	ParentRefs []parentRef     `json:"parentRefs"`
	Hostnames  []string        `json:"hostnames"`
	Rules      []httpRouteRule `json:"rules"`
}

type httpRouteRule struct {
	BackendRefs []httpRouteBackend `json:"backendRefs"`
	Matches     []httpRouteMatch   `json:"matches"`
}

type httpRouteBackend struct {
	Name string `json:"name"`
	Port int32  `json:"port"`
}

type httpRouteMatch struct {
	Path    httpRouteValue   `json:"path"`
	Headers []httpRouteValue `json:"headers"`
}

type httpRouteValue struct {
	Name  string `json:"name,omitempty"`
	Type  string `json:"type"`
	Value string `json:"value"`
}

func (p *prepared) httpRoute(name string) *httpRoute {
	refs := make([]parentRef, 0, len(p.refs))
	for _, r := range p.refs {
		if r.Kind == "" {
			r.Kind = "Gateway"
		}
		if r.Group == "" {
			r.Group = "gateway.networking.k8s.io"
		}
		refs = append(refs, r)
	}
	var hosts []string
	var rules []httpRouteRule
	for _, pp := range p.in.ProxyProviders {
		u, _ := url.Parse(pp.ExternalHost) // checked by prepare
		host := strings.ToLower(u.Hostname())
		hosts = append(hosts, host)
		rules = append(rules, httpRouteRule{
			BackendRefs: []httpRouteBackend{{Name: name, Port: 9000}},
			Matches: []httpRouteMatch{{
				Path:    httpRouteValue{Type: "PathPrefix", Value: routePath(pp.Mode)},
				Headers: []httpRouteValue{{Name: "Host", Type: "Exact", Value: host}},
			}},
		})
	}
	meta := p.meta(name)
	meta.Annotations = p.s.KubernetesHTTPRouteAnnotations
	return &httpRoute{
		TypeMeta: metav1.TypeMeta{APIVersion: "gateway.networking.k8s.io/v1", Kind: "HTTPRoute"},
		Metadata: meta,
		Spec:     httpRouteSpec{ParentRefs: refs, Hostnames: hosts, Rules: rules},
	}
}
