package radius

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/akoutpost/akoutpost/outpost"
)

// TestApplyRefusesOneObject: one broken provider object used to make Apply
// return a plain error, which the outpost takes as "nothing applied"
// although the good objects were installed. It is refused alone, named in
// an *outpost.ApplyError; a broken update of an object that served keeps
// its previous version.
// testDeps lends a provider a client for a core that is never called.
func testDeps(t testing.TB) outpost.Deps {
	t.Helper()
	api, err := outpost.NewClient(outpost.ClientConfig{URL: &url.URL{Scheme: "http", Host: "127.0.0.1:1"}, Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	return outpost.Deps{API: api, Certificates: outpost.NewCertificates(api, nil)}
}

func TestApplyRefusesOneObject(t *testing.T) {
	p, err := New(testDeps(t), Config{})
	if err != nil {
		t.Fatal(err)
	}
	good := func(pk int, name string) json.RawMessage {
		b, _ := json.Marshal(map[string]any{"pk": pk, "name": name, "application_slug": name, "auth_flow_slug": "f", "shared_secret": "s"})
		return b
	}
	broken := func(pk int, name string) json.RawMessage {
		b, _ := json.Marshal(map[string]any{"pk": pk, "name": name, "application_slug": name, "auth_flow_slug": "f", "shared_secret": "s", "client_networks": "x"})
		return b
	}
	apply := func(objs ...json.RawMessage) (*outpost.ApplyError, []string) {
		err := p.Apply(context.Background(), outpost.Update{Providers: objs})
		var ae *outpost.ApplyError
		if err != nil && !errors.As(err, &ae) {
			t.Fatalf("Apply: %v, want nil or an *outpost.ApplyError", err)
		}
		var served []string
		for _, c := range p.state.Load().providers {
			served = append(served, c.Name)
		}
		return ae, served
	}

	ae, served := apply(good(1, "wifi"), broken(2, "vpn"), json.RawMessage(`[]`))
	if ae == nil || ae.Applied != 1 || len(ae.Refused) != 2 || ae.Refused[0].Name != "vpn" || ae.Refused[1].Name != "#2" {
		t.Fatalf("ApplyError = %+v", ae)
	}
	if len(served) != 1 || served[0] != "wifi" {
		t.Fatalf("served %v, want wifi", served)
	}

	// wifi breaks: its previous version stays, and vpn, fixed, joins.
	ae, served = apply(broken(1, "wifi"), good(2, "vpn"))
	if ae == nil || ae.Applied != 2 || len(ae.Refused) != 1 || ae.Refused[0].Name != "wifi" {
		t.Fatalf("ApplyError = %+v", ae)
	}
	if len(served) != 2 || served[0] != "wifi" || served[1] != "vpn" {
		t.Fatalf("served %v, want wifi (previous) and vpn", served)
	}

	if ae, served = apply(good(1, "wifi"), good(2, "vpn")); ae != nil || len(served) != 2 {
		t.Fatalf("all good: %+v, served %v", ae, served)
	}
}

func TestNewNeedsTheAPIClient(t *testing.T) {
	if _, err := New(outpost.Deps{}, Config{}); err == nil || !strings.Contains(err.Error(), "API client") {
		t.Errorf("New without an API client: %v, want an error naming it", err)
	}
}
