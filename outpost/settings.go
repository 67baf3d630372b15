package outpost

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"reflect"

	"github.com/go-viper/mapstructure/v2"
)

// Settings is the outpost's configuration object (the "config" of the
// outpost in authentik, OutpostConfig in the schema), decoded with
// authentik's defaults for keys the object leaves out. Most keys drive
// authentik's deployment controllers (see package outpost/deploy); the
// outpost process itself uses LogLevel, AuthentikHost and
// AuthentikHostBrowser.
type Settings struct {
	// LogLevel is trace, debug, info, warning or error; applied live to
	// standalone outposts. Default "info"; see [ParseLogLevel].
	LogLevel string `mapstructure:"log_level"`
	// AuthentikHost is the core URL as browsers and deployments see it.
	// Browsers are sent to it when the outpost reaches the core at an
	// internal address (see Config.BrowserURL).
	AuthentikHost string `mapstructure:"authentik_host"`
	// AuthentikHostInsecure becomes AUTHENTIK_INSECURE of deployments.
	AuthentikHostInsecure bool `mapstructure:"authentik_host_insecure"`
	// AuthentikHostBrowser is the core URL for browser redirects, when it
	// differs from AuthentikHost.
	AuthentikHostBrowser string `mapstructure:"authentik_host_browser"`
	// RefreshInterval is authentik's timedelta string ("minutes=5"); the core
	// converts it to the outpost's refresh_interval_s, which is what the
	// outpost's timer uses.
	RefreshInterval string `mapstructure:"refresh_interval"`
	// ObjectNamingTemplate names containers and Kubernetes objects, with the
	// placeholders %(name)s and %(uuid)s. Default "ak-outpost-%(name)s".
	ObjectNamingTemplate string `mapstructure:"object_naming_template"`
	// ContainerImage overrides the image of deployments; "" means the default.
	ContainerImage string `mapstructure:"container_image"`
	// DockerNetwork is the container's network; "" means the default.
	DockerNetwork string `mapstructure:"docker_network"`
	// DockerMapPorts publishes the outpost's ports. Default true.
	DockerMapPorts bool `mapstructure:"docker_map_ports"`
	// DockerLabels are extra container labels.
	DockerLabels map[string]string `mapstructure:"docker_labels"`
	// KubernetesReplicas is the Deployment's replica count. Default 1.
	KubernetesReplicas int `mapstructure:"kubernetes_replicas"`
	// KubernetesNamespace is the objects' namespace; "" means the namespace
	// authentik runs in.
	KubernetesNamespace string `mapstructure:"kubernetes_namespace"`
	// KubernetesIngressAnnotations are merged over the default annotations.
	KubernetesIngressAnnotations map[string]string `mapstructure:"kubernetes_ingress_annotations"`
	// KubernetesIngressSecretName is the Ingress TLS secret; an explicit ""
	// disables TLS. Default "authentik-outpost-tls".
	KubernetesIngressSecretName string `mapstructure:"kubernetes_ingress_secret_name"`
	// KubernetesIngressClassName is spec.ingressClassName; "" leaves it unset.
	KubernetesIngressClassName string `mapstructure:"kubernetes_ingress_class_name"`
	// KubernetesIngressPathType is the Ingress pathType; "" means Prefix.
	KubernetesIngressPathType string `mapstructure:"kubernetes_ingress_path_type"`
	// KubernetesHTTPRouteAnnotations are the HTTPRoute's annotations.
	KubernetesHTTPRouteAnnotations map[string]string `mapstructure:"kubernetes_httproute_annotations"`
	// KubernetesHTTPRouteParentRefs are the HTTPRoute's parentRefs; empty
	// means no HTTPRoute.
	KubernetesHTTPRouteParentRefs []map[string]any `mapstructure:"kubernetes_httproute_parent_refs"`
	// KubernetesServiceType is the Service type. Default "ClusterIP".
	KubernetesServiceType string `mapstructure:"kubernetes_service_type"`
	// KubernetesDisabledComponents names reconcilers to skip ("secret",
	// "deployment", "service", "prometheus servicemonitor", "ingress",
	// "httproute", "traefik middleware", "service-metrics").
	KubernetesDisabledComponents []string `mapstructure:"kubernetes_disabled_components"`
	// KubernetesImagePullSecrets are the Deployment's imagePullSecrets.
	KubernetesImagePullSecrets []string `mapstructure:"kubernetes_image_pull_secrets"`
	// KubernetesJSONPatches maps a reconciler name to an RFC 6902 patch list
	// applied to the object it generates.
	KubernetesJSONPatches map[string][]map[string]any `mapstructure:"kubernetes_json_patches"`
}

// DefaultSettings returns authentik's defaults for the keys an outpost's
// config may leave out.
func DefaultSettings() Settings {
	return Settings{
		LogLevel:                       "info",
		RefreshInterval:                "minutes=5",
		ObjectNamingTemplate:           "ak-outpost-%(name)s",
		DockerMapPorts:                 true,
		KubernetesReplicas:             1,
		KubernetesIngressAnnotations:   map[string]string{},
		KubernetesIngressSecretName:    "authentik-outpost-tls",
		KubernetesHTTPRouteAnnotations: map[string]string{},
		KubernetesHTTPRouteParentRefs:  []map[string]any{},
		KubernetesServiceType:          "ClusterIP",
		KubernetesDisabledComponents:   []string{},
		KubernetesImagePullSecrets:     []string{},
	}
}

// SettingsError names the outpost config key whose value could not be
// decoded.
type SettingsError struct {
	Key string
	Err error
}

func (e *SettingsError) Error() string {
	return fmt.Sprintf("outpost config key %q: %v", e.Key, e.Err)
}

func (e *SettingsError) Unwrap() error { return e.Err }

// DecodeSettings decodes an outpost's config object over [DefaultSettings].
// Unknown keys are ignored (newer cores add keys) and a null value keeps the
// default. A value of the wrong type is a *SettingsError naming its key.
// Numbers may arrive as float64 or json.Number; a fractional replica count
// is an error, not silently truncated.
func DecodeSettings(config map[string]any) (Settings, error) {
	s := DefaultSettings()
	// Keys are decoded one at a time so that an error names exactly one
	// key, and a wrong type in one key is not hidden by another.
	for key, value := range config {
		if value == nil {
			continue
		}
		if err := decodeKey(&s, key, value); err != nil {
			return DefaultSettings(), &SettingsError{Key: key, Err: err}
		}
	}
	return s, nil
}

func decodeKey(s *Settings, key string, value any) error {
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		Result: s,
		// Types are strict: a string where a boolean belongs is a mistake
		// to report, not to guess at.
		DecodeHook: jsonNumberHook,
	})
	if err != nil {
		return err
	}
	if err := dec.Decode(map[string]any{key: value}); err != nil {
		var de *mapstructure.DecodeError
		if errors.As(err, &de) {
			return de.Unwrap()
		}
		return err
	}
	return nil
}

// jsonNumberHook converts numbers for integer fields (json.Number from a
// decoder with UseNumber, or float64), rejecting fractions instead of
// truncating them.
func jsonNumberHook(_ reflect.Type, to reflect.Type, data any) (any, error) {
	switch to.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
	default:
		n, ok := data.(json.Number)
		switch {
		case ok && to.Kind() == reflect.Float64:
			return n.Float64()
		case ok && to.Kind() == reflect.String:
			// json.Number is a string type; without this a number would
			// silently become the string "3".
			return nil, fmt.Errorf("expected a string, got the number %s", n)
		}
		return data, nil
	}
	switch n := data.(type) {
	case json.Number:
		i, err := n.Int64()
		if err != nil {
			return nil, fmt.Errorf("expected a whole number, got %s", n)
		}
		return i, nil
	case float64:
		if n != math.Trunc(n) || math.IsInf(n, 0) {
			return nil, fmt.Errorf("expected a whole number, got %v", n)
		}
		return int64(n), nil
	}
	return data, nil
}

// SlogLevel is LogLevel as an slog level; see [ParseLogLevel].
func (s Settings) SlogLevel() slog.Level { return ParseLogLevel(s.LogLevel) }
