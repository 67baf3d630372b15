package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/akoutpost/akoutpost/outpost/outposttest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestGenerated checks that the test core loads what the generator writes
// and that the LDIF names every user and group.
func TestGenerated(t *testing.T) {
	for _, tt := range []struct {
		name                   string
		users, groups, members int
	}{
		{"one group each", 30, 4, 1},
		{"two groups each", 30, 4, 2},
		{"no groups", 5, 1, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			o := options{users: tt.users, groups: tt.groups, members: tt.members, password: "pw",
				service: "svc", servicePW: "svc-pw", blueprint: filepath.Join(dir, "bp.yaml"),
				ldif: filepath.Join(dir, "out.ldif"), ldifBase: "dc=example,dc=org"}
			if err := run(o); err != nil {
				t.Fatal(err)
			}
			bp, err := os.ReadFile(o.blueprint)
			if err != nil {
				t.Fatal(err)
			}
			core, err := outposttest.NewUnstartedServer(outposttest.Config{Blueprint: bp})
			if err != nil {
				t.Fatalf("the test core refuses the blueprint: %v", err)
			}
			defer core.Close()
			if core.Token("ldap-bench") == "" {
				t.Error("no ldap-bench outpost")
			}
			ldif, err := os.ReadFile(o.ldif)
			if err != nil {
				t.Fatal(err)
			}
			text := string(ldif)
			if got := strings.Count(text, "objectClass: inetOrgPerson"); got != tt.users+1 {
				t.Errorf("%d inetOrgPerson entries, want %d", got, tt.users+1)
			}
			if got := strings.Count(text, "objectClass: groupOfNames"); got != tt.groups {
				t.Errorf("%d groupOfNames entries, want %d", got, tt.groups)
			}
			if got := strings.Count(text, "\nmember: cn=user"); got != tt.users*tt.members {
				t.Errorf("%d user memberships, want %d", got, tt.users*tt.members)
			}
		})
	}
}

// TestRefreshInterval checks that -refresh reaches the outpost as the
// core serves it.
func TestRefreshInterval(t *testing.T) {
	for _, tt := range []struct{ refresh, want int }{{0, 300}, {45, 45}} {
		dir := t.TempDir()
		o := options{users: 2, groups: 1, members: 1, password: "pw", service: "svc", servicePW: "svc-pw",
			blueprint: filepath.Join(dir, "bp.yaml"), refresh: tt.refresh}
		if err := run(o); err != nil {
			t.Fatal(err)
		}
		bp, err := os.ReadFile(o.blueprint)
		if err != nil {
			t.Fatal(err)
		}
		core, err := outposttest.NewServer(bp)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodGet, core.URL()+"/api/v3/outposts/instances/", nil)
		req.Header.Set("Authorization", "Bearer "+core.Token("ldap-bench"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Results []struct {
				RefreshIntervalS int `json:"refresh_interval_s"`
			} `json:"results"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		core.Close()
		if err != nil || len(page.Results) != 1 {
			t.Fatalf("outposts: %v, %d results", err, len(page.Results))
		}
		if got := page.Results[0].RefreshIntervalS; got != tt.want {
			t.Errorf("-refresh %d: refresh_interval_s = %d, want %d", tt.refresh, got, tt.want)
		}
	}
}

// TestRadius checks the RADIUS blueprint: the test core serves the
// radius-bench outpost its provider, and the FreeRADIUS users file names
// every user with the same password.
func TestRadius(t *testing.T) {
	dir := t.TempDir()
	o := options{users: 7, groups: 1, members: 0, password: "pw", service: "svc", servicePW: "svc-pw",
		provider: "radius", radiusSecret: "s3cret", blueprint: filepath.Join(dir, "bp.yaml"),
		freeradiusUsers: filepath.Join(dir, "users")}
	if err := run(o); err != nil {
		t.Fatal(err)
	}
	bp, err := os.ReadFile(o.blueprint)
	if err != nil {
		t.Fatal(err)
	}
	core, err := outposttest.NewServer(bp)
	if err != nil {
		t.Fatalf("the test core refuses the blueprint: %v", err)
	}
	defer core.Close()
	req, _ := http.NewRequest(http.MethodGet, core.URL()+"/api/v3/outposts/radius/", nil)
	req.Header.Set("Authorization", "Bearer "+core.Token("radius-bench"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var page struct {
		Results []struct {
			SharedSecret   string `json:"shared_secret"`
			ClientNetworks string `json:"client_networks"`
			AppSlug        string `json:"application_slug"`
		} `json:"results"`
	}
	err = json.NewDecoder(resp.Body).Decode(&page)
	resp.Body.Close()
	if err != nil || len(page.Results) != 1 {
		t.Fatalf("radius providers: %v, %d results", err, len(page.Results))
	}
	if r := page.Results[0]; r.SharedSecret != "s3cret" || !strings.HasPrefix(r.ClientNetworks, "127.0.0.0/8") ||
		r.AppSlug != "radius-bench" {
		t.Errorf("provider %+v", r)
	}
	users, err := os.ReadFile(o.freeradiusUsers)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(users), "\tCleartext-Password := \"pw\"\n"); got != o.users {
		t.Errorf("%d users in the FreeRADIUS file, want %d", got, o.users)
	}
}

func TestRefusesBadOptions(t *testing.T) {
	for _, o := range []options{
		{users: 1, groups: 1},
		{users: 0, groups: 1, blueprint: "x"},
		{users: 1, groups: 1, members: 2, blueprint: "x"},
		{users: 1, groups: 1, password: `a"b`, blueprint: "x"},
		{users: 1, groups: 1, refresh: -1, blueprint: "x"},
		{users: 1, groups: 1, provider: "proxy", blueprint: "x"},
		{users: 1, groups: 1, provider: "radius", blueprint: "x"},
	} {
		if err := run(o); err == nil {
			t.Errorf("run(%+v) succeeded", o)
		}
	}
}
