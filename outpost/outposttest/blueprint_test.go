package outposttest

import (
	"strings"
	"testing"
)

func TestBlueprintErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"not YAML", "version: 1\nentries: [", "parsing YAML"},
		{"no version", "entries: []", "version: 1 is missing"},
		{"version 2", "version: 2\nentries: []", `version "2"`},
		{"unknown top-level key", "version: 1\nfoo: 1", `unknown top-level key "foo"`},
		{"unknown model", "version: 1\nentries:\n  - model: authentik_core.applicationentitlement\n    identifiers: {name: x}",
			`entry 0 (line 3, model authentik_core.applicationentitlement): unknown or unsupported model`},
		{"unknown tag", "version: 1\nentries:\n  - model: authentik_core.user\n    identifiers:\n      username: !Format [a, b]",
			"entry 0 (line 3, model authentik_core.user): identifiers: line 5: unknown or unsupported tag !Format"},
		{"unknown attribute", "version: 1\nentries:\n  - model: authentik_core.user\n    id: u\n    identifiers: {username: a}\n    attrs: {shoe_size: 9}",
			`entry 0 (line 3, model authentik_core.user, id u): unknown attribute "shoe_size"`},
		{"unknown entry key", "version: 1\nentries:\n  - model: authentik_core.user\n    conditions: [true]",
			`unknown key "conditions"`},
		{"KeyOf unknown id", "version: 1\nentries:\n  - model: authentik_core.user\n    identifiers: {username: a}\n    attrs: {groups: [!KeyOf nope]}",
			`!KeyOf: no earlier entry has id "nope"`},
		{"Find unknown model", "version: 1\nentries:\n  - model: authentik_core.user\n    identifiers: {username: a}\n    attrs: {groups: [!Find [authentik_core.nope, [name, x]]]}",
			`unknown or unsupported model "authentik_core.nope"`},
		{"wrong reference type", "version: 1\nentries:\n  - model: authentik_core.group\n    id: g\n    identifiers: {name: g}\n  - model: authentik_core.user\n    identifiers: {username: a}\n    attrs: {roles: [!KeyOf g]}",
			`entry 1 (line 6, model authentik_core.user): roles: each item must name a role`},
		{"proxy without external host", "version: 1\nentries:\n  - model: authentik_providers_proxy.proxyprovider\n    identifiers: {name: p}\n    attrs: {mode: forward_single}",
			"external_host: must be an absolute URL"},
		{"proxy mode without internal host", "version: 1\nentries:\n  - model: authentik_providers_proxy.proxyprovider\n    identifiers: {name: p}\n    attrs: {external_host: 'http://a'}",
			"internal_host: is required in proxy mode"},
		{"outpost type", "version: 1\nentries:\n  - model: authentik_outposts.outpost\n    identifiers: {name: o}\n    attrs: {type: rac}",
			`type: must be proxy, ldap or radius, not "rac"`},
		{"outpost with provider of another type", "version: 1\nentries:\n  - model: authentik_providers_ldap.ldapprovider\n    id: l\n    identifiers: {name: l}\n  - model: authentik_outposts.outpost\n    identifiers: {name: o}\n    attrs: {type: proxy, providers: [!KeyOf l]}",
			`provider "l" is a ldap provider`},
		{"bad permission", "version: 1\nentries:\n  - model: authentik_rbac.role\n    identifiers: {name: r}\n    permissions: [{permission: x}]",
			"needs permission and exactly one of user or role"},
		{"bad state", "version: 1\nentries:\n  - model: authentik_rbac.role\n    state: maybe\n    identifiers: {name: r}", `unknown state "maybe"`},
		{"binding with a policy", "version: 1\nentries:\n  - model: authentik_policies.policybinding\n    identifiers: {policy: x}",
			`unknown attribute "policy"`},
		{"bad certificate", "version: 1\nentries:\n  - model: authentik_crypto.certificatekeypair\n    identifiers: {name: c}\n    attrs: {certificate_data: nope}",
			"certificate_data: no PEM CERTIFICATE block"},
		{"alias bomb", "version: 1\nmetadata:\n  a: &a [x, x, x, x, x, x, x, x, x, x]\n  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n  d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n  e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n  f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n  g: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\nentries: []",
			"too many values"},
		{"bad totp key", "version: 1\nentries:\n  - model: authentik_core.user\n    id: u\n    identifiers: {username: u}\n  - model: authentik_stages_authenticator_totp.totpdevice\n    identifiers: {user: !KeyOf u, name: t}\n    attrs: {key: zz}",
			"key: must be the hex-encoded secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewUnstartedServer(Config{Blueprint: []byte(tc.yaml), LookupEnv: noEnv})
			if err == nil {
				t.Fatalf("loaded; want an error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func noEnv(string) (string, bool) { return "", false }

func TestBlueprintTags(t *testing.T) {
	bp := `version: 1
entries:
  - model: authentik_core.group
    id: g
    identifiers: {name: staff}
  - model: authentik_core.user
    identifiers: {username: !Env [TEST_USER, fallback]}
    attrs:
      email: !Env TEST_EMAIL
      groups: [!KeyOf g, !Find [authentik_core.group, [name, staff]], !Find [authentik_core.group, [name, missing]]]
  - model: authentik_core.user
    identifiers: {username: !Env [TEST_USER, fallback]}
    attrs: {name: Updated by a second entry}
  - model: authentik_providers_ldap.ldapprovider
    identifiers: {name: l}
    attrs:
      authorization_flow: !Find [authentik_flows.flow, [slug, default-authentication-flow]]
`
	env := map[string]string{"TEST_EMAIL": "x@example.com"}
	s, err := NewUnstartedServer(Config{Blueprint: []byte(bp), LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if err != nil {
		t.Fatal(err)
	}
	u := s.m.userByName("fallback")
	if u == nil || u.email != "x@example.com" || u.name != "Updated by a second entry" || len(s.m.users) != 1 {
		t.Fatalf("user = %+v (of %d)", u, len(s.m.users))
	}
	if len(u.groups) != 1 || u.groups[0].name != "staff" {
		t.Errorf("groups = %v; want staff once and the missing !Find dropped", u.groups)
	}
	if p := s.m.providerByName("l"); p.authorization.slug != "default-authentication-flow" {
		t.Errorf("flow = %v", p.authorization)
	}
}

// Blueprints come from users; no input may panic the loader.
func FuzzBlueprint(f *testing.F) {
	f.Add(DemoBlueprint)
	f.Add([]byte("version: 1\nentries:\n  - model: authentik_core.user\n    identifiers: {username: !KeyOf x}\n"))
	f.Add([]byte("version: 1\nentries:\n  - model: authentik_core.group\n    identifiers: {name: a}\n    attrs: {parents: [!Find [authentik_core.group, [name, a]]]}\n"))
	f.Add([]byte("version: 1\nentries:\n  - model: authentik_flows.flow\n    id: f\n    identifiers: {slug: f}\n" +
		"  - model: authentik_stages_mtls.mutualtlsstage\n    id: m\n    identifiers: {name: m}\n" +
		"    attrs: {mode: required, cert_attribute: email, user_attribute: email}\n" +
		"  - model: authentik_flows.flowstagebinding\n    identifiers: {target: !KeyOf f, stage: !KeyOf m, order: 1}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		bp, err := parseBlueprint(data)
		if err != nil {
			return
		}
		// A dry run: certificate generation is slow under the fuzzer's
		// instrumentation and not what is being tested.
		l := &loader{m: newModel("fuzz"), ids: map[string]any{}, lookupEnv: noEnv, dryRun: true}
		_ = l.apply(bp)
	})
}
