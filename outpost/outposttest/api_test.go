package outposttest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestOutpostSeesOnlyItself(t *testing.T) {
	s := startDemo(t)
	c := client(t)
	for _, tc := range []struct{ outpost, typ string }{{"demo-proxy", "proxy"}, {"demo-ldap", "ldap"}} {
		t.Run(tc.outpost, func(t *testing.T) {
			a := call(t, c, "GET", s.URL()+"/api/v3/outposts/instances/", s.Token(tc.outpost), nil)
			if a.status != 200 {
				t.Fatalf("status %d: %s", a.status, a.body)
			}
			checkSchema(t, "PaginatedOutpostList", a.json)
			res := a.results()
			if len(res) != 1 {
				t.Fatalf("got %d outposts, want only its own", len(res))
			}
			o := res[0].(map[string]any)
			if o["name"] != tc.outpost || o["type"] != tc.typ {
				t.Errorf("got outpost %v type %v", o["name"], o["type"])
			}
			if o["refresh_interval_s"] != 300.0 {
				t.Errorf("refresh_interval_s = %v, want 300", o["refresh_interval_s"])
			}
			cfg := o["config"].(map[string]any)
			if cfg["authentik_host"] != s.URL()+"/" || cfg["log_level"] != "info" {
				t.Errorf("config = %v", cfg)
			}
		})
	}
}

func TestProviderConfigs(t *testing.T) {
	s := startDemo(t)
	c := client(t)
	proxy := call(t, c, "GET", s.URL()+"/api/v3/outposts/proxy/?page=1&page_size=100", s.Token("demo-proxy"), nil)
	checkSchema(t, "PaginatedProxyOutpostConfigList", proxy.json)
	if n := len(proxy.results()); n != 2 {
		t.Fatalf("proxy outpost sees %d proxy providers, want 2", n)
	}
	p := proxy.results()[0].(map[string]any)
	oidc := p["oidc_configuration"].(map[string]any)
	if p["name"] != "whoami" || p["mode"] != "proxy" || p["internal_host"] != "http://127.0.0.1:9080" ||
		oidc["issuer"] != s.URL()+"/application/o/whoami/" || p["access_token_validity"] != 28800.0 {
		t.Errorf("whoami provider = %v", p)
	}
	if len(p["cookie_secret"].(string)) != 32 || len(p["client_id"].(string)) != 40 {
		t.Errorf("cookie_secret %q / client_id %q have the wrong length", p["cookie_secret"], p["client_id"])
	}
	ldap := call(t, c, "GET", s.URL()+"/api/v3/outposts/ldap/", s.Token("demo-ldap"), nil)
	checkSchema(t, "PaginatedLDAPOutpostConfigList", ldap.json)
	l := ldap.results()[0].(map[string]any)
	if l["bind_flow_slug"] != "default-authentication-flow" || l["application_slug"] != "ldap" ||
		l["unbind_flow_slug"] != "default-invalidation-flow" || l["base_dn"] != "dc=ldap,dc=goauthentik,dc=io" {
		t.Errorf("ldap provider = %v", l)
	}
	// Another outpost's providers are invisible.
	if n := len(call(t, c, "GET", s.URL()+"/api/v3/outposts/ldap/", s.Token("demo-proxy"), nil).results()); n != 0 {
		t.Errorf("proxy outpost sees %d LDAP providers", n)
	}
}

func TestPermissions(t *testing.T) {
	s := startDemo(t)
	c := client(t)
	paths := []string{"/api/v3/outposts/instances/", "/api/v3/outposts/proxy/", "/api/v3/root/config/",
		"/api/v3/core/users/", "/api/v3/core/groups/", "/api/v3/flows/executor/default-authentication-flow/"}
	for _, p := range paths {
		a := call(t, c, "GET", s.URL()+p, "not-a-token", nil)
		if a.status != 403 || a.obj()["detail"] == nil {
			t.Errorf("unknown token on %s: %d %s, want 403 with detail", p, a.status, a.body)
		}
		if a.status == 403 {
			checkSchema(t, "GenericError", a.json)
		}
	}
	for _, tc := range []struct {
		name, token, path string
		want              int
	}{
		{"no token", "", "/api/v3/outposts/instances/", 403},
		{"root config is public", "", "/api/v3/root/config/", 200},
		{"proxy outpost cannot list users", s.Token("demo-proxy"), "/api/v3/core/users/", 403},
		{"ldap outpost lists users", s.Token("demo-ldap"), "/api/v3/core/users/", 200},
		{"other outpost's websocket", s.Token("demo-proxy"), "/ws/outpost/" + s.Outposts()[1].PK + "/", 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if a := call(t, c, "GET", s.URL()+tc.path, tc.token, nil); a.status != tc.want {
				t.Errorf("status %d, want %d: %s", a.status, tc.want, a.body)
			}
		})
	}
}

func TestRootConfig(t *testing.T) {
	s := startDemo(t)
	a := call(t, client(t), "GET", s.URL()+"/api/v3/root/config/", s.Token("demo-proxy"), nil)
	checkSchema(t, "Config", a.json)
}

func TestPagination(t *testing.T) {
	s := startDemo(t)
	c := client(t)
	tok := s.Token("demo-ldap")
	var names []string
	for page := 1; page != 0; {
		a := call(t, c, "GET", s.URL()+"/api/v3/core/users/?page_size=2&page="+strconv.Itoa(page), tok, nil)
		if a.status != 200 {
			t.Fatalf("page %d: %d %s", page, a.status, a.body)
		}
		checkSchema(t, "PaginatedUserList", a.json)
		for _, r := range a.results() {
			names = append(names, r.(map[string]any)["username"].(string))
		}
		pg := a.obj()["pagination"].(map[string]any)
		if pg["current"] != float64(page) {
			t.Fatalf("current = %v on page %d", pg["current"], page)
		}
		page = int(pg["next"].(float64))
	}
	// alice, bob, carol, ldap-bind and the three outposts' service accounts.
	if len(names) != 7 || !slices.IsSorted(names) || !slices.Contains(names, "alice") {
		t.Errorf("users over all pages = %v, want 7 sorted by username", names)
	}
	if a := call(t, c, "GET", s.URL()+"/api/v3/core/users/?page=99", tok, nil); a.status != 404 {
		t.Errorf("page past the end: %d, want 404", a.status)
	}
}

func TestCertificates(t *testing.T) {
	s := startDemo(t)
	c := client(t)
	tok := s.Token("demo-proxy")
	proxy := call(t, c, "GET", s.URL()+"/api/v3/outposts/proxy/", tok, nil)
	id := proxy.results()[0].(map[string]any)["certificate"].(string)
	base := s.URL() + "/api/v3/crypto/certificatekeypairs/" + id + "/"
	kp := call(t, c, "GET", base, tok, nil)
	checkSchema(t, "CertificateKeyPair", kp.json)
	cert := call(t, c, "GET", base+"view_certificate/", tok, nil)
	key := call(t, c, "GET", base+"view_private_key/", tok, nil)
	checkSchema(t, "CertificateData", cert.json)
	checkSchema(t, "CertificateData", key.json)
	if _, err := tls.X509KeyPair([]byte(cert.obj()["data"].(string)), []byte(key.obj()["data"].(string))); err != nil {
		t.Fatalf("served certificate and key do not pair: %v", err)
	}
	// The LDAP outpost shares the certificate in the demo; an outpost
	// whose providers do not use it cannot read it.
	before := kp.obj()["fingerprint_sha256"]
	if err := s.RotateCertificate("akoutpost demo certificate"); err != nil {
		t.Fatal(err)
	}
	if after := call(t, c, "GET", base, tok, nil).obj()["fingerprint_sha256"]; after == before {
		t.Error("fingerprint unchanged after rotation")
	}
	s2, err := NewServer([]byte(`version: 1
entries:
  - model: authentik_crypto.certificatekeypair
    identifiers: {name: unused}
  - model: authentik_outposts.outpost
    identifiers: {name: empty}
    attrs: {type: proxy}
`))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	var unused string
	for _, kp := range s2.m.certs {
		unused = kp.uuid
	}
	if a := call(t, c, "GET", s2.URL()+"/api/v3/crypto/certificatekeypairs/"+unused+"/", s2.Token("empty"), nil); a.status != http.StatusNotFound {
		t.Errorf("unrelated certificate: %d, want 404", a.status)
	}
}

func TestDeterministicAcrossRestarts(t *testing.T) {
	s1 := startDemo(t)
	s2 := startDemo(t)
	for i, o := range s1.Outposts() {
		p := s2.Outposts()[i]
		if o != (OutpostInfo{Name: p.Name, Type: p.Type, PK: p.PK, Token: p.Token}) || o.Token == "" {
			t.Errorf("outpost %d differs between two cores: %+v vs %+v", i, o, p)
		}
	}
	c := client(t)
	a1 := call(t, c, "GET", s1.URL()+"/api/v3/outposts/proxy/", s1.Token("demo-proxy"), nil)
	a2 := call(t, c, "GET", s2.URL()+"/api/v3/outposts/proxy/", s2.Token("demo-proxy"), nil)
	r1, r2 := a1.results()[0].(map[string]any), a2.results()[0].(map[string]any)
	for _, k := range []string{"pk", "client_id", "client_secret", "cookie_secret", "certificate"} {
		if r1[k] != r2[k] {
			t.Errorf("%s differs: %v vs %v", k, r1[k], r2[k])
		}
	}
	s3, err := NewUnstartedServer(Config{Blueprint: DemoBlueprint, Secret: "other"})
	if err != nil {
		t.Fatal(err)
	}
	if s3.Token("demo-proxy") == s1.Token("demo-proxy") {
		t.Error("a different Secret gives the same token")
	}
}

func TestStopStart(t *testing.T) {
	s := startDemo(t)
	c := client(t)
	url := s.URL()
	s.Stop()
	req, _ := http.NewRequest("GET", url+"/api/v3/root/config/", nil)
	if resp, err := c.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("core answered while stopped")
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if s.URL() != url {
		t.Errorf("URL changed from %s to %s", url, s.URL())
	}
	if a := call(t, c, "GET", url+"/api/v3/outposts/instances/", s.Token("demo-proxy"), nil); a.status != 200 {
		t.Errorf("after Start: %d", a.status)
	}
}

func TestFaults(t *testing.T) {
	s := startDemo(t)
	c := client(t)
	tok := s.Token("demo-proxy")
	url := s.URL() + "/api/v3/outposts/instances/"
	s.Fault(Fault{PathPrefix: "/api/v3/outposts/", Status: 503, Count: 2})
	for i, want := range []int{503, 503, 200} {
		if a := call(t, c, "GET", url, tok, nil); a.status != want {
			t.Errorf("request %d: %d, want %d", i, a.status, want)
		}
	}
	s.Fault(Fault{PathPrefix: "/api/v3/outposts/", Malformed: true, Count: 1})
	if a := call(t, c, "GET", url, tok, nil); a.status != 200 || a.json != nil {
		t.Errorf("malformed fault: %d %q", a.status, a.body)
	}
	s.Fault(Fault{PathPrefix: "/api/", Drop: true})
	req, _ := http.NewRequest("GET", url, nil)
	if resp, err := c.Do(req); err == nil {
		resp.Body.Close()
		t.Error("dropped request got an answer")
	}
	s.ClearFaults()
	if a := call(t, c, "GET", url, tok, nil); a.status != 200 {
		t.Errorf("after ClearFaults: %d", a.status)
	}
}

func TestRequestsLogRedacts(t *testing.T) {
	s := startDemo(t)
	tok := s.Token("demo-proxy")
	call(t, client(t), "GET", s.URL()+"/api/v3/outposts/instances/?x=1", tok, nil)
	reqs := s.Requests()
	if len(reqs) != 1 {
		t.Fatalf("got %d requests", len(reqs))
	}
	r := reqs[0]
	if r.Path != "/api/v3/outposts/instances/" || r.Query != "x=1" || r.Outpost != "demo-proxy" || r.Status != 200 {
		t.Errorf("request = %+v", r)
	}
	if got := r.Header.Get("Authorization"); got != "REDACTED" {
		t.Errorf("Authorization logged as %q", got)
	}
	if s.RequestCount("/api/v3/outposts/") != 1 {
		t.Error("RequestCount")
	}
}

func TestLiveEdits(t *testing.T) {
	s := startDemo(t)
	c := client(t)
	if err := s.UpdateOutpostConfig("demo-proxy", map[string]any{"log_level": "debug", "refresh_interval": "seconds=30"}); err != nil {
		t.Fatal(err)
	}
	o := call(t, c, "GET", s.URL()+"/api/v3/outposts/instances/", s.Token("demo-proxy"), nil).results()[0].(map[string]any)
	if o["config"].(map[string]any)["log_level"] != "debug" || o["refresh_interval_s"] != 30.0 {
		t.Errorf("outpost after edit = %v", o)
	}
	if err := s.UpdateProvider("forward", map[string]any{"mode": "forward_domain", "cookie_domain": "localhost"}); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateProvider("forward", map[string]any{"mode": "bogus"}); err == nil {
		t.Error("invalid mode accepted")
	}
	if err := s.UpdateProvider("forward", map[string]any{"no_such": 1}); err == nil {
		t.Error("unknown attribute accepted")
	}
	p := call(t, c, "GET", s.URL()+"/api/v3/outposts/proxy/", s.Token("demo-proxy"), nil).results()[1].(map[string]any)
	if p["cookie_domain"] != "localhost" {
		t.Errorf("provider after edit = %v", p)
	}
	if err := s.UpdateUser("bob", map[string]any{"email": "robert@example.com", "groups": []string{"demo-admins"}}); err != nil {
		t.Fatal(err)
	}
	u := call(t, c, "GET", s.URL()+"/api/v3/core/users/?username=bob", s.Token("demo-ldap"), nil).results()[0].(map[string]any)
	if u["email"] != "robert@example.com" || len(u["groups"].([]any)) != 1 {
		t.Errorf("user after edit = %v", u)
	}
	if err := s.LoadBlueprint([]byte("version: 1\nentries:\n  - model: authentik_core.user\n    identifiers: {username: dave}\n")); err != nil {
		t.Fatal(err)
	}
	if n := len(call(t, c, "GET", s.URL()+"/api/v3/core/users/?username=dave", s.Token("demo-ldap"), nil).results()); n != 1 {
		t.Errorf("user from a second blueprint: %d results", n)
	}
	if err := s.LoadBlueprint([]byte("version: 1\nentries:\n  - model: authentik_core.user\n    identifiers: {username: erin}\n  - model: nope.nope\n")); err == nil {
		t.Error("bad second blueprint accepted")
	}
	if n := len(call(t, c, "GET", s.URL()+"/api/v3/core/users/?username=erin", s.Token("demo-ldap"), nil).results()); n != 0 {
		t.Error("a failed blueprint half-applied")
	}
}

func TestRetrieveEndpoints(t *testing.T) {
	s := startDemo(t)
	c := client(t)
	o := call(t, c, "GET", s.URL()+"/api/v3/outposts/instances/"+s.Outposts()[1].PK+"/", s.Token("demo-ldap"), nil)
	checkSchema(t, "Outpost", o.json)
	if o.obj()["name"] != "demo-ldap" {
		t.Errorf("outpost = %s", o.body)
	}
	if a := call(t, c, "GET", s.URL()+"/api/v3/outposts/instances/"+s.Outposts()[1].PK+"/", s.Token("demo-proxy"), nil); a.status != 404 {
		t.Errorf("another outpost by pk: %d, want 404", a.status)
	}
	u := call(t, c, "GET", s.URL()+"/api/v3/core/users/1/", s.Token("demo-ldap"), nil)
	checkSchema(t, "User", u.json)
	if u.status != 200 {
		t.Errorf("user 1: %d", u.status)
	}
}

func TestDelayFault(t *testing.T) {
	s := startDemo(t)
	s.Fault(Fault{PathPrefix: "/api/v3/root/", Delay: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL()+"/api/v3/root/config/", nil)
	if resp, err := client(t).Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("a request delayed by an hour answered")
	}
	// Close does not wait for the hour: the delay ends with the request.
}

func TestTLS(t *testing.T) {
	s, err := NewUnstartedServer(Config{Blueprint: DemoBlueprint, TLS: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !strings.HasPrefix(s.URL(), "https://") {
		t.Fatalf("URL %s", s.URL())
	}
	pool := x509.NewCertPool()
	pool.AddCert(s.Certificate())
	c := client(t)
	c.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: pool}
	a := call(t, c, "GET", s.URL()+"/api/v3/outposts/proxy/", s.Token("demo-proxy"), nil)
	if a.status != 200 || !strings.HasPrefix(a.results()[0].(map[string]any)["oidc_configuration"].(map[string]any)["issuer"].(string), "https://") {
		t.Errorf("over TLS: %d %s", a.status, a.body)
	}
	// An unverifying client fails, as an outpost without AUTHENTIK_INSECURE would.
	req, _ := http.NewRequest("GET", s.URL()+"/api/v3/root/config/", nil)
	if resp, err := client(t).Do(req); err == nil {
		resp.Body.Close()
		t.Error("self-signed certificate accepted without trust")
	}
}
