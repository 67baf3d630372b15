package outposttest

import (
	"strings"
	"testing"
)

const connectionsBlueprint = `version: 1
entries:
  - model: authentik_core.group
    id: admins
    identifiers: {name: admins}
    attrs: {is_superuser: true}
  - model: authentik_core.user
    id: admin
    identifiers: {username: admin}
    attrs: {groups: [!KeyOf admins]}
  - model: authentik_core.user
    id: bob
    identifiers: {username: bob}
  - model: authentik_core.token
    identifiers: {identifier: controller}
    attrs: {user: !KeyOf admin, intent: api, key: admin-api-key}
  - model: authentik_core.token
    identifiers: {identifier: bobs}
    attrs: {user: !KeyOf bob, intent: api}
  - model: authentik_outposts.dockerserviceconnection
    id: docker
    identifiers: {name: local docker}
    attrs: {local: false, url: "unix:///run/docker.sock"}
  - model: authentik_outposts.kubernetesserviceconnection
    id: kube
    identifiers: {name: cluster}
    attrs: {local: false, kubeconfig: {apiVersion: v1, kind: Config}, verify_ssl: false}
  - model: authentik_outposts.outpost
    identifiers: {name: managed-ldap}
    attrs: {type: ldap, service_connection: !KeyOf docker, config: {container_image: "x:1"}}
  - model: authentik_outposts.outpost
    identifiers: {name: plain-ldap}
    attrs: {type: ldap}
`

// An API token acts as its user: a superuser's lists every outpost with its
// service connection, the connections, and outposts' token keys; another
// user's sees no connection and no key; an outpost's token sees its own
// key only.
func TestServiceConnectionsAndAPITokens(t *testing.T) {
	s, err := NewServer([]byte(connectionsBlueprint))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	c := client(t)
	toks := s.APITokens()
	if len(toks) != 2 || toks[0].Identifier != "controller" || toks[0].Key != "admin-api-key" || toks[1].Key == "" || toks[1].Username != "bob" {
		t.Fatalf("APITokens %+v", toks)
	}
	admin, bob := toks[0].Key, toks[1].Key

	outposts := call(t, c, "GET", s.URL()+"/api/v3/outposts/instances/", admin, nil)
	checkSchema(t, "PaginatedOutpostList", outposts.json)
	if n := len(outposts.results()); n != 2 {
		t.Fatalf("the superuser's token lists %d outposts", n)
	}
	managed := outposts.results()[0].(map[string]any)
	docker := call(t, c, "GET", s.URL()+"/api/v3/outposts/service_connections/docker/", admin, nil)
	checkSchema(t, "PaginatedDockerServiceConnectionList", docker.json)
	if len(docker.results()) != 1 {
		t.Fatalf("docker connections: %s", docker.body)
	}
	dc := docker.results()[0].(map[string]any)
	if managed["service_connection"] != dc["pk"] || dc["url"] != "unix:///run/docker.sock" {
		t.Errorf("outpost names %v, connection %v", managed["service_connection"], dc)
	}
	kube := call(t, c, "GET", s.URL()+"/api/v3/outposts/service_connections/kubernetes/", admin, nil)
	checkSchema(t, "PaginatedKubernetesServiceConnectionList", kube.json)
	if kc := kube.results()[0].(map[string]any); kc["verify_ssl"] != false || kc["kubeconfig"].(map[string]any)["kind"] != "Config" {
		t.Errorf("kubernetes connection %v", kc)
	}

	keyPath := s.URL() + "/api/v3/core/tokens/" + managed["token_identifier"].(string) + "/view_key/"
	key := call(t, c, "GET", keyPath, admin, nil)
	checkSchema(t, "TokenView", key.json)
	if key.status != 200 || key.obj()["key"] != s.Token("managed-ldap") {
		t.Fatalf("view_key: %d %s", key.status, key.body)
	}
	cases := []struct {
		name, token, url string
		status, results  int
	}{
		{"another user lists no connections", bob, s.URL() + "/api/v3/outposts/service_connections/docker/", 200, 0},
		{"another user cannot see an outpost's key", bob, keyPath, 404, -1},
		{"an outpost sees its own key", s.Token("managed-ldap"), keyPath, 200, -1},
		{"another outpost cannot", s.Token("plain-ldap"), keyPath, 404, -1},
		{"a user sees their own token's key", bob, s.URL() + "/api/v3/core/tokens/bobs/view_key/", 200, -1},
		{"unknown token", "nope", keyPath, 403, -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := call(t, c, "GET", tc.url, tc.token, nil)
			if a.status != tc.status || tc.results >= 0 && len(a.results()) != tc.results {
				t.Fatalf("status %d, body %s", a.status, a.body)
			}
		})
	}

	if err := s.SetOutpostServiceConnection("plain-ldap", "cluster"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetOutpostServiceConnection("plain-ldap", "nothing"); err == nil || !strings.Contains(err.Error(), "nothing") {
		t.Fatalf("unknown connection: %v", err)
	}
	if err := s.DeleteOutpost("managed-ldap"); err != nil {
		t.Fatal(err)
	}
	after := call(t, c, "GET", s.URL()+"/api/v3/outposts/instances/", admin, nil).results()
	if len(after) != 1 || after[0].(map[string]any)["service_connection"] == nil {
		t.Fatalf("after the edits: %v", after)
	}
	if a := call(t, c, "GET", keyPath, admin, nil); a.status != 404 {
		t.Errorf("the deleted outpost's key: %d", a.status)
	}

	if _, err := NewServer([]byte(strings.Replace(connectionsBlueprint, "intent: api, key", "intent: recovery, key", 1))); err == nil || !strings.Contains(err.Error(), "intent") {
		t.Errorf("a recovery token was accepted: %v", err)
	}
}
