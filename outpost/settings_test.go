package outpost_test

import (
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/akoutpost/akoutpost/outpost"
)

func TestDecodeSettings(t *testing.T) {
	defaults := outpost.DefaultSettings()
	cases := []struct {
		name    string
		config  string // JSON, as the core sends it
		want    func(s *outpost.Settings)
		wantKey string // the key a decoding error must name
	}{
		{name: "empty object gives authentik's defaults", config: `{}`, want: func(*outpost.Settings) {}},
		{name: "null config", config: `null`, want: func(*outpost.Settings) {}},
		{
			name: "authentik's default_settings",
			config: `{"log_level":"info","docker_labels":null,"authentik_host":"https://auth.example/",
				"docker_network":null,"container_image":null,"docker_map_ports":true,"refresh_interval":"minutes=5",
				"kubernetes_replicas":1,"kubernetes_namespace":"authentik","authentik_host_browser":"",
				"object_naming_template":"ak-outpost-%(name)s","authentik_host_insecure":false,
				"kubernetes_json_patches":null,"kubernetes_service_type":"ClusterIP",
				"kubernetes_image_pull_secrets":[],"kubernetes_ingress_class_name":null,
				"kubernetes_disabled_components":[],"kubernetes_ingress_annotations":{},
				"kubernetes_ingress_secret_name":"authentik-outpost-tls",
				"kubernetes_httproute_annotations":{},"kubernetes_httproute_parent_refs":[]}`,
			want: func(s *outpost.Settings) {
				s.AuthentikHost = "https://auth.example/"
				s.KubernetesNamespace = "authentik"
			},
		},
		{
			name: "every key set",
			config: `{"log_level":"debug","authentik_host":"https://a","authentik_host_insecure":true,
				"authentik_host_browser":"https://b","refresh_interval":"hours=1","object_naming_template":"x-%(uuid)s",
				"container_image":"img:1","docker_network":"net","docker_map_ports":false,"docker_labels":{"a":"b"},
				"kubernetes_replicas":3,"kubernetes_namespace":"ns","kubernetes_ingress_annotations":{"k":"v"},
				"kubernetes_ingress_secret_name":"","kubernetes_ingress_class_name":"nginx",
				"kubernetes_ingress_path_type":"Exact","kubernetes_httproute_annotations":{"h":"1"},
				"kubernetes_httproute_parent_refs":[{"name":"gw"}],"kubernetes_service_type":"LoadBalancer",
				"kubernetes_disabled_components":["ingress"],"kubernetes_image_pull_secrets":["pull"],
				"kubernetes_json_patches":{"deployment":[{"op":"add","path":"/x","value":1}]},
				"a_key_from_a_newer_core":{"anything":[1,2]}}`,
			want: func(s *outpost.Settings) {
				*s = outpost.Settings{
					LogLevel: "debug", AuthentikHost: "https://a", AuthentikHostInsecure: true,
					AuthentikHostBrowser: "https://b", RefreshInterval: "hours=1", ObjectNamingTemplate: "x-%(uuid)s",
					ContainerImage: "img:1", DockerNetwork: "net", DockerMapPorts: false,
					DockerLabels: map[string]string{"a": "b"}, KubernetesReplicas: 3, KubernetesNamespace: "ns",
					KubernetesIngressAnnotations: map[string]string{"k": "v"}, KubernetesIngressSecretName: "",
					KubernetesIngressClassName: "nginx", KubernetesIngressPathType: "Exact",
					KubernetesHTTPRouteAnnotations: map[string]string{"h": "1"},
					KubernetesHTTPRouteParentRefs:  []map[string]any{{"name": "gw"}},
					KubernetesServiceType:          "LoadBalancer",
					KubernetesDisabledComponents:   []string{"ingress"},
					KubernetesImagePullSecrets:     []string{"pull"},
					KubernetesJSONPatches: map[string][]map[string]any{
						"deployment": {{"op": "add", "path": "/x", "value": json.Number("1")}}},
				}
			},
		},
		{name: "string for a number", config: `{"kubernetes_replicas":"two"}`, wantKey: "kubernetes_replicas"},
		{name: "fraction for a number", config: `{"kubernetes_replicas":1.5}`, wantKey: "kubernetes_replicas"},
		{name: "string for a boolean", config: `{"docker_map_ports":"yes"}`, wantKey: "docker_map_ports"},
		{name: "number for a string", config: `{"log_level":3}`, wantKey: "log_level"},
		{name: "list for a map", config: `{"docker_labels":["a"]}`, wantKey: "docker_labels"},
		{name: "map for a list", config: `{"kubernetes_disabled_components":{"a":1}}`, wantKey: "kubernetes_disabled_components"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var config map[string]any
			dec := json.NewDecoder(strings.NewReader(c.config))
			dec.UseNumber() // as the outpost decodes the core's answer
			if err := dec.Decode(&config); err != nil {
				t.Fatal(err)
			}
			got, err := outpost.DecodeSettings(config)
			if c.wantKey != "" {
				var se *outpost.SettingsError
				if !errors.As(err, &se) || se.Key != c.wantKey || !strings.Contains(err.Error(), c.wantKey) {
					t.Fatalf("DecodeSettings: %v, want an error naming %q", err, c.wantKey)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeSettings: %v", err)
			}
			want := defaults
			want.DockerLabels = nil
			c.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

// Numbers decoded without UseNumber arrive as float64.
func TestDecodeSettingsFloat(t *testing.T) {
	s, err := outpost.DecodeSettings(map[string]any{"kubernetes_replicas": float64(2)})
	if err != nil || s.KubernetesReplicas != 2 {
		t.Fatalf("got %d, %v", s.KubernetesReplicas, err)
	}
	if _, err := outpost.DecodeSettings(map[string]any{"kubernetes_replicas": 2.5}); err == nil {
		t.Fatal("a fractional replica count was accepted")
	}
}

func TestParseLogLevel(t *testing.T) {
	cases := map[string]slog.Level{
		"trace": outpost.LevelTrace, "debug": slog.LevelDebug, "info": slog.LevelInfo, "": slog.LevelInfo,
		"warning": slog.LevelWarn, "WARN": slog.LevelWarn, "error": slog.LevelError,
		"verbose": slog.LevelDebug, // unknown means debug, as in authentik
	}
	for in, want := range cases {
		if got := outpost.ParseLogLevel(in); got != want {
			t.Errorf("ParseLogLevel(%q) = %v, want %v", in, got, want)
		}
	}
	if outpost.LevelTrace >= slog.LevelDebug {
		t.Error("trace must be below debug")
	}
}
