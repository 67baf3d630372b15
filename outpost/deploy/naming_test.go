package deploy

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

func TestPyFormat(t *testing.T) {
	values := map[string]string{"name": "my-outpost", "uuid": "4a8b2f1e93c54d6ab7e05f21c8d9a3b4"}
	tests := []struct {
		tmpl, want, err string
	}{
		{tmpl: "ak-outpost-%(name)s", want: "ak-outpost-my-outpost"},
		{tmpl: "%(name)s-%(uuid)s", want: "my-outpost-4a8b2f1e93c54d6ab7e05f21c8d9a3b4"},
		{tmpl: "plain", want: "plain"},
		{tmpl: "100%%-%(name)s", want: "100%-my-outpost"},
		{tmpl: "%(uuid).8s", want: "4a8b2f1e"},
		{tmpl: "[%(name)12s]", want: "[  my-outpost]"},
		{tmpl: "[%(name)-12s]", want: "[my-outpost  ]"},
		{tmpl: "%(name)s%(name)s", want: "my-outpostmy-outpost"},
		{tmpl: "", want: ""},
		{tmpl: "%(nope)s", err: "unknown placeholder"},
		{tmpl: "%(name)d", err: "must end in s"},
		{tmpl: "%s", err: "only %(key)s"},
		{tmpl: "%(name", err: "unclosed"},
		{tmpl: "ends with %", err: "lone"},
		{tmpl: "%(name)", err: "must end in s"},
	}
	for _, tt := range tests {
		t.Run(tt.tmpl, func(t *testing.T) {
			got, err := pyFormat(tt.tmpl, values)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("pyFormat(%q) = %q, %v; want error with %q", tt.tmpl, got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("pyFormat(%q) = %q, %v; want %q", tt.tmpl, got, err, tt.want)
			}
		})
	}
}

// The cases follow Django's slugify, which authentik applies to names.
func TestSlugify(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Proxy Outpost", "proxy-outpost"},
		{"  Leading and trailing  ", "leading-and-trailing"},
		{"Café Crème", "cafe-creme"},
		{"a_b--c  d", "a_b-c-d"},
		{"_-hello-_", "hello"},
		{"日本語", ""},
		{"with.dots:and/slashes", "withdotsandslashes"},
		{"Ünïcödé 2", "unicode-2"},
		{"tab\tand\nnewline", "tab-and-newline"},
	}
	for _, tt := range tests {
		if got := slugify(tt.in); got != tt.want {
			t.Errorf("slugify(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestObjectAndContainerNames(t *testing.T) {
	long := strings.Repeat("abcdefghij", 7) // 70 characters
	tests := []struct {
		name, tmpl      string
		object          string
		container       string
		containerErrors bool
	}{
		{name: "Proxy Outpost", tmpl: "ak-outpost-%(name)s", object: "ak-outpost-proxy-outpost", container: "ak-outpost-proxy-outpost"},
		{name: "Proxy Outpost", tmpl: "AK-%(uuid)s", object: "ak-4a8b2f1e93c54d6ab7e05f21c8d9a3b4", container: "ak-4a8b2f1e93c54d6ab7e05f21c8d9a3b4"},
		// Underscores are fine for Docker but not in a DNS label.
		{name: "Proxy Outpost", tmpl: "ak_%(name)s", object: "ak-proxy-outpost", container: "ak_proxy-outpost"},
		// Cut to 63 characters.
		{name: long, tmpl: "ak-outpost-%(name)s", object: ("ak-outpost-" + long)[:63], container: "ak-outpost-" + long},
		// A cut that ends on a dash: authentik would keep it, which the API
		// server refuses; it is trimmed.
		{name: strings.Repeat("a", 62) + " b", tmpl: "%(name)s", object: strings.Repeat("a", 62), container: strings.Repeat("a", 62) + "-b"},
		// Nothing left: authentik's fallback.
		{name: "日本語", tmpl: "%(name)s", object: "outpost-4a8b2f1e93c54d6ab7e05f21c8d9a3b4", containerErrors: true},
		{name: "x", tmpl: "%%%%", object: "outpost-4a8b2f1e93c54d6ab7e05f21c8d9a3b4", container: "", containerErrors: true},
	}
	for _, tt := range tests {
		t.Run(tt.tmpl+"/"+tt.name, func(t *testing.T) {
			in := ldapInput()
			in.Name = tt.name
			in.Settings.ObjectNamingTemplate = tt.tmpl
			got, err := ObjectName(in)
			if err != nil || got != tt.object {
				t.Errorf("ObjectName = %q, %v; want %q", got, err, tt.object)
			}
			got, err = ContainerName(in)
			if tt.containerErrors {
				if err == nil {
					t.Errorf("ContainerName = %q, want an error", got)
				}
				return
			}
			if err != nil || got != tt.container {
				t.Errorf("ContainerName = %q, %v; want %q", got, err, tt.container)
			}
		})
	}
}

func TestImage(t *testing.T) {
	tests := []struct {
		name string
		in   func(*Input)
		want string
	}{
		{"default", func(*Input) {}, "ghcr.io/goauthentik/ldap:2026.2.3"},
		{"container_image", func(in *Input) { in.Settings.ContainerImage = "ghcr.io/akoutpost/akoutpost:1.0.0" }, "ghcr.io/akoutpost/akoutpost:1.0.0"},
		{"container_image without version", func(in *Input) {
			in.Settings.ContainerImage = "registry.local/akoutpost:dev"
			in.Version = ""
		}, "registry.local/akoutpost:dev"},
		{"image base", func(in *Input) { in.ImageBase = "mirror.local/goauthentik/%(type)s:%(version)s%(build_hash)s" }, "mirror.local/goauthentik/ldap:2026.2.3"},
		{"build hash", func(in *Input) { in.Version = "2026.2.3+abc123" }, "ghcr.io/goauthentik/ldap:2026.2.3"},
		{"build hash in base", func(in *Input) {
			in.Version = "2026.2.3+abc123"
			in.ImageBase = "mirror.local/%(type)s:%(version)s-%(build_hash)s"
		}, "mirror.local/ldap:2026.2.3-abc123"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := ldapInput()
			tt.in(&in)
			got, err := Image(in)
			if err != nil || got != tt.want {
				t.Errorf("Image = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// Whatever the name and template, a Kubernetes name is a DNS label (or the
// template is refused).
func FuzzObjectName(f *testing.F) {
	for _, seed := range [][2]string{
		{"Proxy Outpost", "ak-outpost-%(name)s"}, {"日本語", "%(name)s"}, {"a_b", "%(uuid)s_%(name)s"},
		{strings.Repeat("x ", 40), "%(name)-70s"}, {"-", "%%"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, name, tmpl string) {
		if strings.TrimSpace(name) == "" {
			return
		}
		in := ldapInput()
		in.Name = name
		in.Settings.ObjectNamingTemplate = tmpl
		got, err := ObjectName(in)
		if err != nil {
			return
		}
		if errs := validation.IsDNS1123Label(got); len(errs) > 0 {
			t.Fatalf("ObjectName(%q, %q) = %q: %v", name, tmpl, got, errs)
		}
		if errs := validation.IsDNS1123Label(metricsServiceName(got)); len(errs) > 0 {
			t.Fatalf("metrics Service name %q: %v", metricsServiceName(got), errs)
		}
	})
}
