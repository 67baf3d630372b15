package outposttest

import (
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
)

const radiusBlueprint = `
version: 1
entries:
  - model: authentik_core.user
    id: alice
    identifiers: {username: alice}
    attrs: {password: alice-password}
  - model: authentik_core.user
    id: bob
    identifiers: {username: bob}
    attrs: {password: bob-password}
  - model: authentik_providers_radius.radiusprovider
    id: wifi
    identifiers: {name: wifi}
    attrs:
      shared_secret: wifi-secret
      client_networks: "10.0.0.0/8, 127.0.0.0/8"
      mfa_support: false
  - model: authentik_providers_radius.radiusprovider
    id: defaults
    identifiers: {name: defaults}
  - model: authentik_core.application
    id: wifi-app
    identifiers: {slug: wifi}
    attrs: {name: Wi-Fi, provider: !KeyOf wifi}
  - model: authentik_core.application
    identifiers: {slug: vpn}
    attrs: {name: VPN, provider: !KeyOf defaults}
  - model: authentik_policies.policybinding
    identifiers: {target: !KeyOf wifi-app, user: !KeyOf alice, order: 0}
  - model: authentik_outposts.outpost
    identifiers: {name: radius}
    attrs: {type: radius, providers: [!KeyOf wifi, !KeyOf defaults]}
`

func TestRadiusOutpostConfig(t *testing.T) {
	s, err := NewServer([]byte(radiusBlueprint))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	c := client(t)
	a := call(t, c, "GET", s.URL()+"/api/v3/outposts/radius/", s.Token("radius"), nil)
	if a.status != 200 {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	checkSchema(t, "PaginatedRadiusOutpostConfigList", a.json)
	got := map[string]map[string]any{}
	for _, r := range a.results() {
		m := r.(map[string]any)
		got[m["name"].(string)] = m
	}
	wifi, def := got["wifi"], got["defaults"]
	if wifi == nil || def == nil {
		t.Fatalf("providers: %s", a.body)
	}
	if wifi["shared_secret"] != "wifi-secret" || wifi["client_networks"] != "10.0.0.0/8, 127.0.0.0/8" ||
		wifi["mfa_support"] != false || wifi["application_slug"] != "wifi" ||
		wifi["auth_flow_slug"] != "default-authentication-flow" || wifi["certificate"] != nil {
		t.Errorf("wifi: %v", wifi)
	}
	// authentik's model defaults: every address, MFA on, a generated
	// 40-character secret.
	if sec, _ := def["shared_secret"].(string); len(sec) != 40 || def["client_networks"] != "0.0.0.0/0, ::/0" ||
		def["mfa_support"] != true {
		t.Errorf("defaults: %v", def)
	}
	// Other outposts' tokens do not see RADIUS providers.
	if a := call(t, c, "GET", s.URL()+"/api/v3/outposts/radius/", "", nil); a.status != 403 {
		t.Errorf("without a token: %d", a.status)
	}
	inst := call(t, c, "GET", s.URL()+"/api/v3/outposts/instances/", s.Token("radius"), nil)
	checkSchema(t, "PaginatedOutpostList", inst.json)
	if r := inst.results(); len(r) != 1 || r[0].(map[string]any)["type"] != "radius" {
		t.Errorf("instances: %s", inst.body)
	}
}

func TestRadiusCheckAccess(t *testing.T) {
	s, err := NewServer([]byte(radiusBlueprint))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if err := s.SetRadiusAttributes("wifi", RadiusAttribute{Type: 25, Value: []byte("class-a")},
		RadiusAttribute{Type: 11, Value: []byte("staff")}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRadiusAttributes("nope"); err == nil {
		t.Error("SetRadiusAttributes accepted an unknown provider")
	}
	var pk string
	for _, r := range call(t, client(t), "GET", s.URL()+"/api/v3/outposts/radius/", s.Token("radius"), nil).results() {
		if m := r.(map[string]any); m["name"] == "wifi" {
			pk = strconv.Itoa(int(m["pk"].(float64)))
		}
	}
	for _, tc := range []struct {
		user    string
		passing bool
	}{{"alice", true}, {"bob", false}} {
		t.Run(tc.user, func(t *testing.T) {
			f := newFlowClient(t, s, "default-authentication-flow")
			f.token = s.Token("radius")
			if ch := f.bind(tc.user, password(tc.user+"-password")); ch["component"] != componentRedirect {
				t.Fatalf("login failed: %v", ch)
			}
			status, acc := f.do("GET", s.URL()+"/api/v3/outposts/radius/"+pk+"/check_access/?app_slug=wifi", nil)
			checkSchema(t, "RadiusCheckAccess", acc)
			if status != 200 || acc["access"].(map[string]any)["passing"] != tc.passing {
				t.Fatalf("check_access: %d %v", status, acc)
			}
			if !tc.passing {
				if _, ok := acc["attributes"]; ok {
					t.Errorf("attributes for a user denied access: %v", acc["attributes"])
				}
				return
			}
			raw, err := base64.StdEncoding.DecodeString(acc["attributes"].(string))
			if err != nil {
				t.Fatal(err)
			}
			want := "\x19\x09class-a\x0b\x07staff"
			if len(raw) != 20+len(want) || raw[0] != 1 || int(raw[2])<<8|int(raw[3]) != len(raw) || string(raw[20:]) != want {
				t.Errorf("attributes packet % x", raw)
			}
			status, _ = f.do("GET", s.URL()+"/api/v3/outposts/radius/999/check_access/?app_slug=wifi", nil)
			if status != 404 {
				t.Errorf("unknown provider: %d", status)
			}
		})
	}
}

func TestRadiusBlueprintErrors(t *testing.T) {
	for _, tc := range []struct{ name, entry, want string }{
		{"blank secret", `{model: authentik_providers_radius.radiusprovider, identifiers: {name: r}, attrs: {shared_secret: ""}}`, "shared_secret"},
		{"blank networks", `{model: authentik_providers_radius.radiusprovider, identifiers: {name: r}, attrs: {client_networks: ""}}`, "client_networks"},
		{"unknown attribute", `{model: authentik_providers_radius.radiusprovider, identifiers: {name: r}, attrs: {base_dn: x}}`, "base_dn"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewServer([]byte("version: 1\nentries:\n  - " + tc.entry + "\n"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one naming %s", err, tc.want)
			}
		})
	}
	mixed := strings.Replace(radiusBlueprint, "type: radius", "type: ldap", 1)
	if _, err := NewServer([]byte(mixed)); err == nil || !strings.Contains(err.Error(), "radius provider") {
		t.Errorf("an LDAP outpost with RADIUS providers: %v", err)
	}
}
