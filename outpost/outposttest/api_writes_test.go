package outposttest

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket/wsjson"

	"github.com/akoutpost/akoutpost/outpost"
)

// authentik's REST writes: a superuser's API token edits outposts and
// service connections as an administrator would, each write reaches the
// outpost as a trigger-update, and other tokens are refused with
// authentik's status codes.
func TestRESTWrites(t *testing.T) {
	s, err := NewServer([]byte(connectionsBlueprint))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	c := client(t)
	admin, bob := s.APITokens()[0].Key, s.APITokens()[1].Key
	var pk string
	for _, o := range s.Outposts() {
		if o.Name == "managed-ldap" {
			pk = o.PK
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ws := dialOutpost(ctx, t, s, "managed-ldap", "inst-w", 0)
	trigger := func(t *testing.T) {
		t.Helper()
		var m outpost.Message
		if err := wsjson.Read(ctx, ws, &m); err != nil || m.Instruction != outpost.InstructionTriggerUpdate {
			t.Fatalf("expected a trigger-update: %+v, %v", m, err)
		}
	}
	url := s.URL() + "/api/v3/outposts/instances/" + pk + "/"

	a := call(t, c, "PATCH", url, admin, map[string]any{"config": map[string]any{"docker_labels": map[string]any{"a": "b"}}})
	if a.status != 200 || a.obj()["config"].(map[string]any)["docker_labels"].(map[string]any)["a"] != "b" {
		t.Fatalf("PATCH config: %d %s", a.status, a.body)
	}
	checkSchema(t, "Outpost", a.json)
	trigger(t)

	kube := call(t, c, "GET", s.URL()+"/api/v3/outposts/service_connections/kubernetes/", admin, nil).results()[0].(map[string]any)
	if a := call(t, c, "PATCH", url, admin, map[string]any{"service_connection": kube["pk"]}); a.status != 200 || a.obj()["service_connection"] != kube["pk"] {
		t.Fatalf("PATCH service_connection: %d %s", a.status, a.body)
	}
	trigger(t)
	connURL := s.URL() + "/api/v3/outposts/service_connections/kubernetes/" + kube["pk"].(string) + "/"
	if a := call(t, c, "PATCH", connURL, admin, map[string]any{"verify_ssl": true}); a.status != 200 || a.obj()["verify_ssl"] != true {
		t.Fatalf("PATCH connection: %d %s", a.status, a.body)
	} else {
		checkSchema(t, "KubernetesServiceConnection", a.json)
	}
	trigger(t) // the outpost on that connection hears of it

	cases := []struct {
		name, method, url, token string
		body                     any
		status                   int
		detail                   string
	}{
		{"no token", "PATCH", url, "", map[string]any{"name": "x"}, 403, "Authentication credentials were not provided."},
		{"a user without permission", "PATCH", url, bob, map[string]any{"name": "x"}, 404, "No Outpost matches"},
		{"the outpost's own token", "PATCH", url, s.Token("managed-ldap"), map[string]any{"name": "x"}, 403, "permission"},
		{"an unknown service connection", "PATCH", url, admin, map[string]any{"service_connection": "00000000-0000-0000-0000-000000000000"}, 400, "does not exist"},
		{"PUT without required fields", "PUT", url, admin, map[string]any{"name": "x"}, 400, "required"},
		{"not an object", "PATCH", url, admin, []any{1}, 400, "dictionary"},
		{"a user cannot edit a connection", "PATCH", connURL, bob, map[string]any{"name": "x"}, 404, "No Service Connection"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := call(t, c, tc.method, tc.url, tc.token, tc.body)
			if a.status != tc.status || !strings.Contains(string(a.body), tc.detail) {
				t.Fatalf("%d %s", a.status, a.body)
			}
		})
	}

	if a := call(t, c, "DELETE", url, admin, nil); a.status != 204 {
		t.Fatalf("DELETE: %d %s", a.status, a.body)
	}
	trigger(t)
	if n := len(call(t, c, "GET", s.URL()+"/api/v3/outposts/instances/", admin, nil).results()); n != 1 {
		t.Fatalf("%d outposts after the delete", n)
	}
}

// The proxy provider endpoint a controller reads external hosts from, and
// its PATCH, which tells the provider's outposts.
func TestProxyProviderReadAndPatch(t *testing.T) {
	bp := strings.Replace(string(DemoBlueprint), "entries:\n", `entries:
  - model: authentik_core.group
    id: ctl-admins
    identifiers: {name: ctl-admins}
    attrs: {is_superuser: true}
  - model: authentik_core.user
    id: ctl-admin
    identifiers: {username: ctl-admin}
    attrs: {groups: [!KeyOf ctl-admins]}
  - model: authentik_core.token
    identifiers: {identifier: ctl}
    attrs: {user: !KeyOf ctl-admin, intent: api}
`, 1)
	s, err := NewServer([]byte(bp))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	c := client(t)
	admin := s.APITokens()[0].Key
	var pk float64
	for _, p := range call(t, c, "GET", s.URL()+"/api/v3/outposts/proxy/", s.Token("demo-proxy"), nil).results() {
		if m := p.(map[string]any); m["name"] == "whoami" {
			pk = m["pk"].(float64)
		}
	}
	url := s.URL() + "/api/v3/providers/proxy/" + strconv.Itoa(int(pk)) + "/"
	a := call(t, c, "GET", url, admin, nil)
	if a.status != 200 || a.obj()["external_host"] != "http://whoami.localhost:9000" || a.obj()["mode"] != "proxy" {
		t.Fatalf("GET: %d %s", a.status, a.body)
	}
	checkSchema(t, "ProxyProvider", a.json)
	if a := call(t, c, "GET", url, s.Token("demo-ldap"), nil); a.status != 404 {
		t.Errorf("another outpost's token reads the provider: %d", a.status)
	}
	if a := call(t, c, "PATCH", url, admin, map[string]any{"external_host": "http://renamed.localhost:9000"}); a.status != 200 {
		t.Fatalf("PATCH: %d %s", a.status, a.body)
	}
	if a := call(t, c, "GET", url, admin, nil); a.obj()["external_host"] != "http://renamed.localhost:9000" {
		t.Fatalf("after PATCH: %s", a.body)
	}
}
