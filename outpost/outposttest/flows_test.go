package outposttest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket/wsjson"

	"github.com/akoutpost/akoutpost/outpost"
)

// flowClient talks to the executor the way the LDAP outpost does: its own
// cookie jar and the outpost token in X-authentik-outpost-token.
type flowClient struct {
	t     *testing.T
	s     *Server
	c     *http.Client
	token string
	url   string
}

func newFlowClient(t *testing.T, s *Server, slug string) *flowClient {
	q := url.Values{"query": {"goauthentik.io/outpost/ldap=true"}}
	return &flowClient{t: t, s: s, c: browser(t), token: s.Token("demo-ldap"),
		url: s.URL() + "/api/v3/flows/executor/" + slug + "/?" + q.Encode()}
}

func (f *flowClient) do(method, u string, body any) (int, map[string]any) {
	f.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, u, rd)
	req.Header.Set("X-authentik-outpost-token", f.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.c.Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// step posts an answer and checks the challenge against the schema.
func (f *flowClient) step(answer map[string]any) map[string]any {
	f.t.Helper()
	method := http.MethodPost
	if answer == nil {
		method = http.MethodGet
	}
	status, ch := f.do(method, f.url, answer)
	if status != 200 {
		f.t.Fatalf("executor: %d %v", status, ch)
	}
	checkSchema(f.t, "ChallengeTypes", ch)
	return ch
}

// bind runs the default authentication flow with username and answers,
// returning the last challenge.
func (f *flowClient) bind(username string, answers ...map[string]any) map[string]any {
	f.t.Helper()
	ch := f.step(nil)
	if ch["component"] != componentIdentification {
		f.t.Fatalf("first challenge %v", ch["component"])
	}
	ch = f.step(map[string]any{"component": componentIdentification, "uid_field": username})
	for _, a := range answers {
		ch = f.step(a)
	}
	return ch
}

func password(pw string) map[string]any {
	return map[string]any{"component": componentPassword, "password": pw}
}

func TestFlowExecutor(t *testing.T) {
	s := startDemo(t)
	for _, tc := range []struct {
		name      string
		user      string
		answers   []map[string]any
		component string
		errField  string
	}{
		{"right password", "alice", []map[string]any{password("alice-password")}, componentRedirect, ""},
		{"by email", "bob@example.com", []map[string]any{password("bob-password")}, componentRedirect, ""},
		{"wrong password", "alice", []map[string]any{password("nope")}, componentPassword, "password"},
		{"unknown user", "mallory", []map[string]any{password("x")}, componentPassword, "password"},
		{"too many failures", "alice", []map[string]any{password("1"), password("2"), password("3"), password("4"), password("5")},
			componentAccessDenied, ""},
		{"MFA asked", "carol", []map[string]any{password("carol-password")}, componentValidate, ""},
		{"MFA wrong code", "carol", []map[string]any{password("carol-password"),
			{"component": componentValidate, "code": "000000"}}, componentValidate, "code"},
		{"MFA static token", "carol", []map[string]any{password("carol-password"),
			{"component": componentValidate, "code": "recovery1"}}, componentRedirect, ""},
		{"static token used up", "carol", []map[string]any{password("carol-password"),
			{"component": componentValidate, "code": "recovery1"}}, componentValidate, "code"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch := newFlowClient(t, s, "default-authentication-flow").bind(tc.user, tc.answers...)
			if ch["component"] != tc.component {
				t.Fatalf("ended on %v, want %s: %v", ch["component"], tc.component, ch)
			}
			errs, _ := ch["response_errors"].(map[string]any)
			if (errs[tc.errField] == nil) != (tc.errField == "") {
				t.Errorf("response_errors = %v, want an error on %q", errs, tc.errField)
			}
			if tc.component == componentValidate && tc.errField == "" {
				if n := len(ch["device_challenges"].([]any)); n != 2 {
					t.Errorf("carol has %d device challenges, want totp and static", n)
				}
			}
		})
	}
	t.Run("TOTP", func(t *testing.T) {
		code, _ := s.TOTPCode("carol", time.Now())
		f := newFlowClient(t, s, "default-authentication-flow")
		ch := f.bind("carol", password("carol-password"), map[string]any{"component": componentValidate, "code": code})
		if ch["component"] != componentRedirect || ch["to"] != "/" {
			t.Errorf("ended on %v", ch)
		}
		// The same code is refused a second time.
		ch = newFlowClient(t, s, "default-authentication-flow").bind("carol", password("carol-password"),
			map[string]any{"component": componentValidate, "code": code})
		if ch["component"] != componentValidate {
			t.Errorf("replayed TOTP code: %v", ch["component"])
		}
	})
	t.Run("inactive user", func(t *testing.T) {
		if err := s.UpdateUser("bob", map[string]any{"is_active": false}); err != nil {
			t.Fatal(err)
		}
		defer s.UpdateUser("bob", map[string]any{"is_active": true})
		ch := newFlowClient(t, s, "default-authentication-flow").bind("bob", password("bob-password"))
		if ch["component"] != componentPassword {
			t.Errorf("inactive user got %v", ch["component"])
		}
	})
	t.Run("unknown flow", func(t *testing.T) {
		f := newFlowClient(t, s, "nope")
		if status, _ := f.do("GET", f.url, nil); status != 404 {
			t.Errorf("status %d", status)
		}
	})
	t.Run("unknown outpost token", func(t *testing.T) {
		f := newFlowClient(t, s, "default-authentication-flow")
		f.token = "forged"
		if status, _ := f.do("GET", f.url, nil); status != 403 {
			t.Errorf("status %d", status)
		}
	})
	t.Run("authorization flow needs a session", func(t *testing.T) {
		if ch := newFlowClient(t, s, "default-provider-authorization-implicit-consent").step(nil); ch["component"] != componentAccessDenied {
			t.Errorf("got %v", ch["component"])
		}
	})
}

// sessionID computes the session id from the session cookie the way the
// flow client does: sha256 of the JWT's sid claim.
func sessionID(t *testing.T, c *http.Client, base string) string {
	u, _ := url.Parse(base)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == sessionCookie {
			parts := strings.Split(ck.Value, ".")
			payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
			var claims struct{ SID string }
			_ = json.Unmarshal(payload, &claims)
			h := sha256.Sum256([]byte(claims.SID))
			return hex.EncodeToString(h[:])
		}
	}
	t.Fatal("no session cookie")
	return ""
}

func TestFlowSessionAPIs(t *testing.T) {
	s := startDemo(t)
	for _, tc := range []struct {
		user, password     string
		passing, canSearch bool
	}{
		{"alice", "alice-password", true, true},
		{"bob", "bob-password", false, false},
		{"ldap-bind", "ldap-bind-password", true, true},
	} {
		t.Run(tc.user, func(t *testing.T) {
			f := newFlowClient(t, s, "default-authentication-flow")
			if ch := f.bind(tc.user, password(tc.password)); ch["component"] != componentRedirect {
				t.Fatalf("login failed: %v", ch)
			}
			status, me := f.do("GET", s.URL()+"/api/v3/core/users/me/", nil)
			checkSchema(t, "SessionUser", me)
			if status != 200 || me["user"].(map[string]any)["username"] != tc.user {
				t.Errorf("me: %d %v", status, me)
			}
			status, acc := f.do("GET", s.URL()+"/api/v3/outposts/ldap/"+ldapPK(t, s)+"/check_access/?app_slug=ldap", nil)
			checkSchema(t, "LDAPCheckAccess", acc)
			if status != 200 || acc["access"].(map[string]any)["passing"] != tc.passing || acc["has_search_permission"] != tc.canSearch {
				t.Errorf("check_access: %d %v", status, acc)
			}
		})
	}
	// Django's session authentication (ModelBackend.get_user) no longer
	// finds a user who was deactivated: the session stops authenticating
	// them at once, before any session end.
	t.Run("a deactivated user's session no longer authenticates", func(t *testing.T) {
		f := newFlowClient(t, s, "default-authentication-flow")
		if ch := f.bind("bob", password("bob-password")); ch["component"] != componentRedirect {
			t.Fatalf("login failed: %v", ch)
		}
		if _, me := f.do("GET", s.URL()+"/api/v3/core/users/me/", nil); me["user"].(map[string]any)["username"] != "bob" {
			t.Fatalf("me before: %v", me)
		}
		if err := s.UpdateUser("bob", map[string]any{"is_active": false}); err != nil {
			t.Fatal(err)
		}
		defer s.UpdateUser("bob", map[string]any{"is_active": true})
		if _, me := f.do("GET", s.URL()+"/api/v3/core/users/me/", nil); me["user"].(map[string]any)["username"] == "bob" {
			t.Error("the session of a deactivated user still authenticates bob")
		}
		f.token = ""
		if status, _ := f.do("GET", s.URL()+"/api/v3/core/users/me/", nil); status != http.StatusForbidden {
			t.Errorf("me with only the session of a deactivated user: %d, want 403", status)
		}
	})
	t.Run("session end reaches the outposts", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ws := dialOutpost(ctx, t, s, "demo-ldap", "i", 0)
		f := newFlowClient(t, s, "default-authentication-flow")
		f.bind("alice", password("alice-password"))
		want := sessionID(t, f.c, s.URL())
		if n := s.EndSessions("alice"); n < 1 {
			t.Fatalf("ended %d sessions", n)
		}
		seen := false
		for !seen {
			var m outpost.Message
			if err := wsjson.Read(ctx, ws, &m); err != nil {
				t.Fatal(err)
			}
			seen = m.Instruction == outpost.InstructionSessionEnd && m.Args["session_id"] == want
		}
		// The cookie no longer names a session; only the outpost token
		// authenticates, as the outpost's service account.
		if _, me := f.do("GET", s.URL()+"/api/v3/core/users/me/", nil); me["user"].(map[string]any)["username"] == "alice" {
			t.Error("the ended session still authenticates alice")
		}
	})
}

func ldapPK(t *testing.T, s *Server) string {
	r := call(t, client(t), "GET", s.URL()+"/api/v3/outposts/ldap/", s.Token("demo-ldap"), nil).results()
	return strconv.Itoa(int(r[0].(map[string]any)["pk"].(float64)))
}

func TestLiveUserEdits(t *testing.T) {
	s := startDemo(t)
	if err := s.SetUserPassword("bob", "new-password"); err != nil {
		t.Fatal(err)
	}
	if ch := newFlowClient(t, s, "default-authentication-flow").bind("bob", password("bob-password")); ch["component"] != componentPassword {
		t.Errorf("old password after a change: %v", ch["component"])
	}
	if ch := newFlowClient(t, s, "default-authentication-flow").bind("bob", password("new-password")); ch["component"] != componentRedirect {
		t.Errorf("new password: %v", ch["component"])
	}
	// Membership and group edits show in the directory and the access check.
	if err := s.AddUserToGroup("bob", "demo-admins"); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateGroup("demo-admins", map[string]any{"attributes": map[string]any{"level": 3}}); err != nil {
		t.Fatal(err)
	}
	f := newFlowClient(t, s, "default-authentication-flow")
	f.bind("bob", password("new-password"))
	_, acc := f.do("GET", s.URL()+"/api/v3/outposts/ldap/"+ldapPK(t, s)+"/check_access/?app_slug=ldap", nil)
	if acc["access"].(map[string]any)["passing"] != true || acc["has_search_permission"] != true {
		t.Errorf("bob in demo-admins: %v", acc)
	}
	a := call(t, client(t), "GET", s.URL()+"/api/v3/core/users/?username=bob", s.Token("demo-ldap"), nil)
	groups := a.results()[0].(map[string]any)["groups_obj"].([]any)
	if len(groups) != 2 || groups[1].(map[string]any)["attributes"].(map[string]any)["level"] != 3.0 {
		t.Errorf("bob's groups = %v", groups)
	}
	if err := s.RemoveUserFromGroup("bob", "demo-admins"); err != nil {
		t.Fatal(err)
	}
	_, acc = f.do("GET", s.URL()+"/api/v3/outposts/ldap/"+ldapPK(t, s)+"/check_access/?app_slug=ldap", nil)
	if acc["access"].(map[string]any)["passing"] != false {
		t.Errorf("bob removed from demo-admins still passes: %v", acc)
	}
	if err := s.UpdateUser("nobody", map[string]any{"name": "x"}); err == nil {
		t.Error("editing an unknown user succeeded")
	}
}

// TestFlowFidelity holds the test core to authentik's own stages where a
// kinder core would let an outpost pass a test it fails against authentik.
func TestFlowFidelity(t *testing.T) {
	s := startDemo(t)
	// authentik's identification stage has case_insensitive_matching
	// (default true) and queries username__iexact and email__iexact, so
	// an LDAP bind as cn=Alice logs in the user alice.
	for _, uid := range []string{"Alice", "ALICE", "Bob@Example.COM"} {
		t.Run("identification ignores case/"+uid, func(t *testing.T) {
			pw := "alice-password"
			if strings.HasPrefix(strings.ToLower(uid), "bob") {
				pw = "bob-password"
			}
			ch := newFlowClient(t, s, "default-authentication-flow").bind(uid, password(pw))
			if ch["component"] != componentRedirect {
				t.Fatalf("%s: ended on %v: %v", uid, ch["component"], ch)
			}
		})
	}
	t.Run("identification without an identifier", func(t *testing.T) {
		f := newFlowClient(t, s, "default-authentication-flow")
		f.step(nil)
		ch := f.step(map[string]any{"component": componentIdentification, "uid_field": ""})
		errs, _ := ch["response_errors"].(map[string]any)
		if ch["component"] != componentIdentification || errs["non_field_errors"] == nil {
			t.Errorf("empty identifier: %v", ch)
		}
	})
	t.Run("identification ignores case/not a prefix", func(t *testing.T) {
		ch := newFlowClient(t, s, "default-authentication-flow").bind("Alic", password("alice-password"))
		if ch["component"] != componentPassword {
			t.Fatalf("ended on %v", ch["component"])
		}
	})

	// django-otp's devices_for_user returns a confirmed static device
	// whether or not tokens are left, so authentik's authenticator
	// validation stage still asks for a code once the last token is used
	// and refuses every code after it: the password alone never passes.
	t.Run("static device used up still demands a code", func(t *testing.T) {
		s, err := NewServer([]byte(`version: 1
entries:
  - model: authentik_core.user
    id: dave
    identifiers: {username: dave}
    attrs: {password: dave-password}
  - model: authentik_stages_authenticator_static.staticdevice
    identifiers: {user: !KeyOf dave, name: dave's codes}
    attrs:
      token_set:
        - token: only-one
`))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		code := func(c string) map[string]any { return map[string]any{"component": componentValidate, "code": c} }
		if ch := newFlowClient(t, s, "default-authentication-flow").bind("dave", password("dave-password"), code("only-one")); ch["component"] != componentRedirect {
			t.Fatalf("first use of the token ended on %v", ch["component"])
		}
		f := newFlowClient(t, s, "default-authentication-flow")
		ch := f.bind("dave", password("dave-password"))
		if ch["component"] != componentValidate {
			t.Fatalf("the password alone ended on %v, want the validation stage", ch["component"])
		}
		if n := len(ch["device_challenges"].([]any)); n != 1 {
			t.Errorf("%d device challenges, want the used-up static device", n)
		}
		for _, c := range []string{"only-one", "000000", ""} {
			if ch := f.step(code(c)); ch["component"] != componentValidate || ch["response_errors"] == nil {
				t.Errorf("code %q after the last token: %v", c, ch)
			}
		}
		// The login page runs the same stages.
		c := client(t)
		resp, err := c.PostForm(s.URL()+"/if/flow/default-authentication-flow/", url.Values{
			"username": {"dave"}, "password": {"dave-password"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusFound {
			t.Errorf("the login page let dave in without a code")
		}
	})

	// authentik's user-login stage refuses a pending user who is not
	// active, so a user deactivated between the password and the
	// authenticator stage is not logged in by a right code.
	t.Run("user login refuses a user deactivated mid-flow", func(t *testing.T) {
		f := newFlowClient(t, s, "default-authentication-flow")
		if ch := f.bind("carol", password("carol-password")); ch["component"] != componentValidate {
			t.Fatalf("ended on %v", ch["component"])
		}
		if err := s.UpdateUser("carol", map[string]any{"is_active": false}); err != nil {
			t.Fatal(err)
		}
		defer s.UpdateUser("carol", map[string]any{"is_active": true})
		code, _ := s.TOTPCode("carol", time.Now())
		if ch := f.step(map[string]any{"component": componentValidate, "code": code}); ch["component"] != componentAccessDenied {
			t.Errorf("deactivated user ended on %v", ch["component"])
		}
	})

	// authentik's get_device_challenges lists one challenge per device
	// class, however many devices of that class the user has.
	t.Run("one challenge per device class", func(t *testing.T) {
		s, err := NewServer([]byte(`version: 1
entries:
  - model: authentik_core.user
    id: erin
    identifiers: {username: erin}
    attrs: {password: erin-password}
  - model: authentik_stages_authenticator_static.staticdevice
    identifiers: {user: !KeyOf erin, name: first}
    attrs: {token_set: [{token: a1}]}
  - model: authentik_stages_authenticator_static.staticdevice
    identifiers: {user: !KeyOf erin, name: second}
    attrs: {token_set: [{token: b1}]}
`))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		ch := newFlowClient(t, s, "default-authentication-flow").bind("erin", password("erin-password"))
		if n := len(ch["device_challenges"].([]any)); n != 1 {
			t.Errorf("%d device challenges for two static devices, want 1", n)
		}
	})
}

// authentik's TOTP devices are django-otp's: a code is checked at the
// step (now - t0) / step + drift, with tolerance steps either side
// (default 1). A device with tolerance 0 refuses the previous step's code,
// which the default accepts.
func TestTOTPTolerance(t *testing.T) {
	s, err := NewServer([]byte(`version: 1
entries:
  - model: authentik_core.user
    id: tina
    identifiers: {username: tina}
    attrs: {password: tina-password}
  - model: authentik_stages_authenticator_totp.totpdevice
    identifiers: {user: !KeyOf tina, name: strict}
    attrs: {key: "3132333435363738393031323334353637383930", tolerance: 0}
  - model: authentik_core.user
    id: tom
    identifiers: {username: tom}
    attrs: {password: tom-password}
  - model: authentik_stages_authenticator_totp.totpdevice
    identifiers: {user: !KeyOf tom, name: default}
    attrs: {key: "3132333435363738393031323334353637383930"}
  - model: authentik_core.user
    id: dora
    identifiers: {username: dora}
    attrs: {password: dora-password}
  - model: authentik_stages_authenticator_totp.totpdevice
    identifiers: {user: !KeyOf dora, name: drifted}
    attrs: {key: "3132333435363738393031323334353637383930", tolerance: 0, drift: 2}
`))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	validate := func(user, code string) string {
		ch := newFlowClient(t, s, "default-authentication-flow").bind(user, password(user+"-password"),
			map[string]any{"component": componentValidate, "code": code})
		c, _ := ch["component"].(string)
		return c
	}
	// Not near the end of a step, so the step stays the same while the
	// test runs.
	if left := 30 - time.Now().Unix()%30; left < 3 {
		time.Sleep(time.Duration(left) * time.Second)
	}
	now := time.Now()
	prev, _ := s.TOTPCode("tom", now.Add(-30*time.Second))
	if got := validate("tina", prev); got != componentValidate {
		t.Errorf("tolerance 0 took the previous step's code: %s", got)
	}
	if got := validate("tom", prev); got != componentRedirect {
		t.Errorf("the default tolerance refused the previous step's code: %s", got)
	}
	// Drift 2: the code two steps ahead is the current one.
	ahead, _ := s.TOTPCode("tom", now.Add(60*time.Second))
	if code, _ := s.TOTPCode("dora", now); code != ahead {
		t.Errorf("TOTPCode ignores the drift: %s, want %s", code, ahead)
	}
	if got := validate("dora", ahead); got != componentRedirect {
		t.Errorf("a drifted device refused its current code: %s", got)
	}
}
