package reliability

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/akoutpost/akoutpost/outpost/outposttest"
)

// TestNoSecretsInLogs runs both outposts at trace level through logins,
// bearer and cookie use, LDAP binds (good, wrong, while the core errs and
// while it is down) and refreshes against a failing core, then searches
// every log line and every error a client saw for each secret involved.
// A leak here is a security bug: operators ship these logs to shared
// systems.
func TestNoSecretsInLogs(t *testing.T) {
	s := startStack(t, stackOptions{})
	var clientErrors []string
	secrets := map[string]string{
		"alice password":          alicePassword,
		"bind password":           binderPassword,
		"proxy outpost token":     s.core.Token("rel-proxy"),
		"ldap outpost token":      s.core.Token("rel-ldap"),
		"wrong password attempts": "Wrong-Secret-Pw-0d9b17",
	}
	// The proxy providers' client and cookie secrets, as the outpost sees them.
	var providers struct {
		Results []struct {
			Name         string `json:"name"`
			ClientSecret string `json:"client_secret"`
			CookieSecret string `json:"cookie_secret"`
		} `json:"results"`
	}
	req, _ := http.NewRequest(http.MethodGet, s.core.URL()+"/api/v3/outposts/proxy/", nil)
	req.Header.Set("Authorization", "Bearer "+s.core.Token("rel-proxy"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&providers)
	resp.Body.Close()
	if len(providers.Results) != 2 {
		t.Fatalf("proxy providers: %+v", providers)
	}
	for _, p := range providers.Results {
		if p.ClientSecret == "" || p.CookieSecret == "" {
			t.Fatalf("provider %s has no secrets: %+v", p.Name, p)
		}
		secrets[p.Name+" client secret"] = p.ClientSecret
		secrets[p.Name+" cookie secret"] = p.CookieSecret
	}

	// Proxy: login, cookie use, bearer use, a bad bearer, a tampered cookie.
	jar := s.login(t, "http://app.test/first", "alice", alicePassword)
	appURL, _ := url.Parse("http://app.test/")
	for i, c := range jar.Cookies(appURL) {
		secrets["app cookie "+c.Name+string(rune('a'+i))] = c.Value
	}
	code, body, err := s.get(jar, "http://app.test/second")
	if err != nil || code != 200 {
		t.Fatalf("cookie use: %d %v", code, err)
	}
	var seen struct{ JWT string }
	json.Unmarshal([]byte(body), &seen)
	if seen.JWT == "" {
		t.Fatal("upstream saw no X-Authentik-Jwt")
	}
	secrets["access token"] = seen.JWT
	c := s.client(nil, false)
	for _, bearer := range []string{seen.JWT, seen.JWT + "x", "Bogus-Bearer-Token-55aa"} {
		r, _ := http.NewRequest(http.MethodGet, "http://app.test/api", nil)
		r.Header.Set("Authorization", "Bearer "+bearer)
		if resp, err := c.Do(r); err == nil {
			resp.Body.Close()
		}
	}
	secrets["bogus bearer"] = "Bogus-Bearer-Token-55aa"
	r, _ := http.NewRequest(http.MethodGet, "http://app.test/tampered", nil)
	for _, ck := range jar.Cookies(appURL) {
		r.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value[:len(ck.Value)/2] + "Tampered"})
	}
	if resp, err := c.Do(r); err == nil {
		resp.Body.Close()
	}
	r, _ = http.NewRequest(http.MethodGet, "http://app.test/basic", nil)
	r.SetBasicAuth("alice", "Wrong-Secret-Pw-0d9b17")
	if resp, err := c.Do(r); err == nil {
		resp.Body.Close()
	}
	c.CloseIdleConnections()
	fj := s.forwardLogin(t, "alice", alicePassword)
	fwdURL, _ := url.Parse("http://fwd.test/")
	for _, ck := range fj.Cookies(fwdURL) {
		secrets["fwd cookie "+ck.Name] = ck.Value
	}
	if code, err := s.forwardAuth(fj, "/checked"); err != nil || code != 200 {
		t.Fatalf("forward auth with cookie: %d %v", code, err)
	}

	// LDAP: binds good and bad on both providers, searches.
	ldapRound := func() {
		l, err := s.ldap()
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		for _, b := range []struct{ dn, pw string }{
			{binderCachedDN, binderPassword}, {binderDirectDN, binderPassword},
			{aliceCachedDN, "Wrong-Secret-Pw-0d9b17"}, {aliceDirectDN, "Wrong-Secret-Pw-0d9b17"},
			{aliceDirectDN, alicePassword}, {"cn=alice,ou=users,dc=nowhere", alicePassword},
		} {
			if err := l.Bind(b.dn, b.pw); err != nil {
				clientErrors = append(clientErrors, err.Error())
			}
			if _, err := s.search(l, "dc=direct,dc=test", "(objectClass=user)"); err != nil {
				clientErrors = append(clientErrors, err.Error())
			}
		}
	}
	ldapRound()

	// Injected errors: the core errs, answers garbage, then is down, while
	// both outposts refresh and clients keep binding and logging in.
	s.core.Fault(outposttest.Fault{PathPrefix: "/api/v3/", Status: 500, Count: 20})
	s.core.TriggerUpdate("rel-proxy")
	s.core.TriggerUpdate("rel-ldap")
	ldapRound()
	s.core.ClearFaults()
	s.core.Fault(outposttest.Fault{PathPrefix: "/api/v3/", Malformed: true, Count: 20})
	s.core.TriggerUpdate("rel-proxy")
	s.core.TriggerUpdate("rel-ldap")
	ldapRound()
	s.core.ClearFaults()
	s.core.Stop()
	ldapRound()
	s.get(jar, "http://app.test/while-down")
	s.core.Start()
	eventually(t, "websocket back", func() error {
		if !s.proxyOut.Connected() || !s.ldapOut.Connected() {
			return errors.New("not connected")
		}
		return nil
	})
	ldapRound()
	l, err := s.ldap()
	if err == nil {
		if err := l.Bind(binderDirectDN, binderPassword); err != nil {
			clientErrors = append(clientErrors, err.Error())
		}
		l.Close()
	}
	ldapErrors := 0
	for _, e := range clientErrors {
		if strings.Contains(e, "LDAP Result Code") {
			ldapErrors++
		}
	}
	if ldapErrors == 0 {
		t.Fatal("no client saw an LDAP error: the injected faults did not bite")
	}
	time.Sleep(200 * time.Millisecond) // let the last log lines land

	logs := s.logs.String()
	lines := strings.Count(logs, "\n")
	if lines < 50 || !strings.Contains(logs, `"level":"DEBUG"`) {
		t.Fatalf("only %d log lines (debug present: %v): the test would prove nothing", lines, strings.Contains(logs, `"level":"DEBUG"`))
	}
	t.Logf("searched %d log lines and %d client-visible errors for %d secrets", lines, len(clientErrors), len(secrets))
	all := logs + "\n" + strings.Join(clientErrors, "\n")
	for name, secret := range secrets {
		if len(secret) < 8 {
			t.Fatalf("secret %s too short to search for: %q", name, secret)
		}
		if i := strings.Index(all, secret); i >= 0 {
			lo, hi := max(0, i-200), min(len(all), i+len(secret)+50)
			t.Errorf("%s appears in the logs or errors: ...%s...", name, all[lo:hi])
		}
	}
}
