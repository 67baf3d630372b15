package outpost

import (
	"context"
	"testing"
)

// TestBrowserURL: where browsers are sent, by precedence. authentik_host
// counts only for a core at an internal address, whose own OIDC URLs
// browsers cannot reach.
func TestBrowserURL(t *testing.T) {
	for _, c := range []struct {
		core, env, hostSetting, browserSetting, want string
	}{
		{"https://auth.example", "", "", "", "https://auth.example"},
		{"https://auth.example", "", "https://public.example/", "", "https://auth.example"},
		{"https://auth.example", "", "https://public.example/", "https://browser.example/", "https://browser.example/"},
		{"https://auth.example", "https://env.example", "https://public.example/", "https://browser.example/", "https://env.example"},
		{"http://127.0.0.1:9000", "", "https://public.example/", "", "https://public.example/"},
		{"http://[::1]:9000", "", "https://public.example/", "", "https://public.example/"},
		{"http://0.0.0.0:9000", "", "https://public.example/", "", "https://public.example/"},
		{"http://localhost:9000", "", "https://public.example/", "", "https://public.example/"},
		{"unix:///run/core.sock", "", "https://public.example/", "", "https://public.example/"},
		{"unix:///run/core.sock", "", "https://public.example/", "https://browser.example/", "https://browser.example/"},
		{"unix:///run/core.sock", "", "", "", "http://localhost"},
		{"http://127.0.0.1:9000/sub/?q=1", "", "", "", "http://127.0.0.1:9000/sub/"},
	} {
		o, err := New(Config{CoreURL: c.core, Token: "t", BrowserURL: c.env,
			Providers: map[string]Factory{"proxy": stubFactory}})
		if err != nil {
			t.Fatal(err)
		}
		got := o.browserURL(Settings{AuthentikHost: c.hostSetting, AuthentikHostBrowser: c.browserSetting})
		if got != c.want {
			t.Errorf("core %s, env %q, authentik_host %q, authentik_host_browser %q: %s, want %s",
				c.core, c.env, c.hostSetting, c.browserSetting, got, c.want)
		}
	}
}

// TestUnixCoreURL: what a unix socket core URL may look like.
func TestUnixCoreURL(t *testing.T) {
	for core, ok := range map[string]bool{
		"unix:///run/core.sock":          true,
		"unix://localhost/run/core.sock": true,
		"unix://other/run/core.sock":     false,
		"unix://":                        false,
		"unix:///":                       false,
		"unix:relative.sock":             false,
	} {
		_, err := New(Config{CoreURL: core, Token: "t", Providers: map[string]Factory{"proxy": stubFactory}})
		if (err == nil) != ok {
			t.Errorf("%s: error %v, want ok=%v", core, err, ok)
		}
	}
}

type stubProvider struct{}

func stubFactory(context.Context, Deps) (Provider, error) { return stubProvider{}, nil }

func (stubProvider) Apply(context.Context, Update) error { return nil }
func (stubProvider) Serve(ctx context.Context) error     { <-ctx.Done(); return nil }
