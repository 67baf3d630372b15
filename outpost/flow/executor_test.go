package flow

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/akoutpost/akoutpost/metrics"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeCore is a tiny flow executor: identification, password, then an
// authenticator stage for users with a code, then a redirect. State lives
// in a cookie so the test proves the executor keeps its jar.
type fakeCore struct {
	t        *testing.T
	mu       sync.Mutex
	users    map[string]fakeUser
	status   int    // answer every request with this status when non-zero
	extra    string // a component to send after the password stage
	denied   bool   // end on access denied instead of a redirect
	headers  []http.Header
	queries  []string
	sessions map[string]string // cookie -> state
	next     int
}

type fakeUser struct{ password, code string }

func newFakeCore(t *testing.T) (*fakeCore, *httptest.Server) {
	f := &fakeCore{t: t, users: map[string]fakeUser{
		"alice": {password: "secret"},
		"bob":   {password: "pw", code: "123456"},
	}, sessions: map[string]string{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func jwtWithSID(sid string) string {
	enc := base64.RawURLEncoding
	claims, _ := json.Marshal(map[string]string{"sid": sid})
	return enc.EncodeToString([]byte(`{"alg":"none"}`)) + "." + enc.EncodeToString(claims) + ".sig"
}

func (f *fakeCore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.headers = append(f.headers, r.Header.Clone())
	f.queries = append(f.queries, r.URL.RawQuery)
	if f.status != 0 {
		w.WriteHeader(f.status)
		return
	}
	if r.URL.Path == "/api/v3/core/users/me/" {
		c, err := r.Cookie(SessionCookie)
		if err != nil || f.sessions[c.Value] == "" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"user": map[string]any{"pk": 7, "username": f.sessions[c.Value]}})
		return
	}
	if !strings.HasPrefix(r.URL.Path, "/api/v3/flows/executor/login/") {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	state := ""
	if c, err := r.Cookie("fake_state"); err == nil {
		state = c.Value
	}
	setState := func(s string) { http.SetCookie(w, &http.Cookie{Name: "fake_state", Value: s, Path: "/"}) }
	send := func(v map[string]any) { json.NewEncoder(w).Encode(v) }
	if r.Method == http.MethodGet {
		setState("ident")
		send(map[string]any{"component": StageIdentification, "user_fields": []string{"username"}})
		return
	}
	var body map[string]any
	json.NewDecoder(r.Body).Decode(&body)
	switch {
	case strings.HasPrefix(state, "ident"):
		name, _ := body["uid_field"].(string)
		if _, ok := f.users[name]; !ok {
			send(map[string]any{"component": StageIdentification, "response_errors": map[string]any{
				"non_field_errors": []map[string]string{{"string": "Failed to authenticate.", "code": "invalid"}}}})
			return
		}
		setState("pw:" + name)
		send(map[string]any{"component": StagePassword})
	case strings.HasPrefix(state, "pw:"):
		name := strings.TrimPrefix(state, "pw:")
		if body["password"] != f.users[name].password {
			send(map[string]any{"component": StagePassword, "response_errors": map[string]any{
				"password": []map[string]string{{"string": "Invalid password", "code": "invalid"}}}})
			return
		}
		if f.extra != "" {
			send(map[string]any{"component": f.extra})
			return
		}
		if f.users[name].code != "" {
			setState("mfa:" + name)
			send(map[string]any{"component": StageAuthenticatorValidate, "device_challenges": []map[string]any{
				{"device_class": "webauthn", "device_uid": "9", "challenge": map[string]any{}},
				{"device_class": "totp", "device_uid": "1", "challenge": map[string]any{}},
			}})
			return
		}
		f.finish(w, name, setState, send)
	case strings.HasPrefix(state, "mfa:"):
		name := strings.TrimPrefix(state, "mfa:")
		sel, _ := body["selected_challenge"].(map[string]any)
		if body["code"] != f.users[name].code || sel["device_class"] != "totp" {
			send(map[string]any{"component": StageAuthenticatorValidate, "response_errors": map[string]any{
				"code": []map[string]string{{"string": "Invalid Token", "code": "invalid"}}}})
			return
		}
		f.finish(w, name, setState, send)
	default:
		w.WriteHeader(http.StatusBadRequest)
	}
}

func (f *fakeCore) finish(w http.ResponseWriter, name string, setState func(string), send func(map[string]any)) {
	if f.denied {
		send(map[string]any{"component": StageAccessDenied, "error_message": "User is not active"})
		return
	}
	f.next++
	cookie := jwtWithSID("key-" + name)
	f.sessions[cookie] = name
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: cookie, Path: "/"})
	setState("done")
	send(map[string]any{"component": StageRedirect, "to": "/"})
}

func newExecutor(t *testing.T, srv *httptest.Server, m *metrics.Flow) *Executor {
	t.Helper()
	u, _ := url.Parse(srv.URL + "/")
	e, err := New(Config{BaseURL: u, Transport: srv.Client().Transport, Token: "tok-1", UserAgent: "akoutpost-test/1", Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestRun(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(*fakeCore)
		req      Request
		want     Outcome
		reason   string
		wantUser string
	}{
		{name: "right password", req: Request{Username: "alice", Password: "secret"}, want: OutcomeSuccess, wantUser: "alice"},
		{name: "right password with mfa on and no code", req: Request{Username: "alice", Password: "secret", MFA: true}, want: OutcomeSuccess, wantUser: "alice"},
		{name: "wrong password", req: Request{Username: "alice", Password: "nope"}, want: OutcomeRejected, reason: "Invalid password"},
		{name: "unknown user", req: Request{Username: "mallory", Password: "x"}, want: OutcomeRejected, reason: "Failed to authenticate"},
		{name: "mfa right code", req: Request{Username: "bob", Password: "pw;123456", MFA: true}, want: OutcomeSuccess, wantUser: "bob"},
		{name: "mfa wrong code", req: Request{Username: "bob", Password: "pw;654321", MFA: true}, want: OutcomeRejected, reason: "Invalid Token"},
		{name: "mfa missing code", req: Request{Username: "bob", Password: "pw", MFA: true}, want: OutcomeRejected, reason: "no code-based authenticator"},
		// Without MFA support the code is split off nothing: the whole
		// string is the password, so the password stage fails.
		{name: "code without mfa support", req: Request{Username: "bob", Password: "pw;123456"}, want: OutcomeRejected, reason: "Invalid password"},
		{name: "access denied", setup: func(f *fakeCore) { f.denied = true }, req: Request{Username: "alice", Password: "secret"}, want: OutcomeDenied, reason: "User is not active"},
		{name: "unsupported stage", setup: func(f *fakeCore) { f.extra = "ak-stage-captcha" }, req: Request{Username: "alice", Password: "secret"}, want: OutcomeRejected, reason: "unsupported challenge"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, srv := newFakeCore(t)
			if tt.setup != nil {
				tt.setup(f)
			}
			e := newExecutor(t, srv, nil)
			tt.req.Flow = "login"
			res, err := e.Run(context.Background(), tt.req)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if res.Outcome != tt.want {
				t.Fatalf("outcome = %v (%s), want %v", res.Outcome, res.Reason, tt.want)
			}
			if !strings.Contains(res.Reason, tt.reason) {
				t.Errorf("reason = %q, want it to contain %q", res.Reason, tt.reason)
			}
			if strings.Contains(res.Reason, tt.req.Password) {
				t.Errorf("reason %q leaks the password", res.Reason)
			}
			if tt.want != OutcomeSuccess {
				if res.Session != nil {
					t.Error("a failed run returned a session")
				}
				return
			}
			var me struct {
				User struct {
					PK       int    `json:"pk"`
					Username string `json:"username"`
				} `json:"user"`
			}
			if err := res.Session.Get(context.Background(), "/core/users/me/", nil, &me); err != nil {
				t.Fatalf("users/me: %v", err)
			}
			if me.User.Username != tt.wantUser {
				t.Errorf("users/me = %q, want %q", me.User.Username, tt.wantUser)
			}
			if res.Session.ID() == "" {
				t.Error("session has no ID")
			}
		})
	}
}

func TestRunCoreErrors(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		busy, unav bool
	}{
		{name: "internal error", status: 500, unav: true},
		{name: "bad gateway", status: 502, unav: true},
		{name: "overloaded", status: 503, busy: true},
		{name: "rate limited", status: 429, busy: true},
		{name: "flow not found", status: 404},
		{name: "token rejected", status: 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, srv := newFakeCore(t)
			f.status = tt.status
			res, err := newExecutor(t, srv, nil).Run(context.Background(), Request{Flow: "login", Username: "alice", Password: "secret"})
			var fe *Error
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if res.Outcome != OutcomeError || res.Session != nil {
				t.Errorf("result = %+v, want the zero (failing) result", res)
			}
			if fe.StatusCode != tt.status || fe.Busy() != tt.busy || fe.Unavailable() != tt.unav {
				t.Errorf("error %v: status %d busy %v unavailable %v", fe, fe.StatusCode, fe.Busy(), fe.Unavailable())
			}
		})
	}
}

func TestRunCoreDown(t *testing.T) {
	_, srv := newFakeCore(t)
	e := newExecutor(t, srv, nil)
	srv.Close()
	_, err := e.Run(context.Background(), Request{Flow: "login", Username: "alice", Password: "secret"})
	var fe *Error
	if !errors.As(err, &fe) || !fe.Unavailable() {
		t.Fatalf("err = %v, want an unavailable *Error", err)
	}
	if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "tok-1") {
		t.Errorf("error %q leaks a secret", err)
	}
}

// A flow that keeps asking must not hold a bind forever.
func TestRunStepLimit(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"component": StageUserLogin})
	}))
	defer srv.Close()
	res, err := newExecutor(t, srv, nil).Run(context.Background(), Request{Flow: "login"})
	if err != nil || res.Outcome != OutcomeRejected || !strings.Contains(res.Reason, "too many") {
		t.Fatalf("Run = %+v, %v; want rejected after too many stages", res, err)
	}
}

func TestRunHeadersAndQuery(t *testing.T) {
	f, srv := newFakeCore(t)
	_, err := newExecutor(t, srv, nil).Run(context.Background(), Request{
		Flow: "login", Username: "alice", Password: "secret", RemoteIP: "192.0.2.7",
		Query: url.Values{"goauthentik.io/outpost/ldap": {"true"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, h := range f.headers {
		if h.Get(HeaderOutpostToken) != "tok-1" || h.Get("User-Agent") != "akoutpost-test/1" || h.Get(HeaderRemoteIP) != "192.0.2.7" {
			t.Errorf("request %d headers = %v", i, h)
		}
		if h.Get("Authorization") != "" {
			t.Errorf("request %d sent an Authorization header", i)
		}
	}
	if want := "query=goauthentik.io%252Foutpost%252Fldap%3Dtrue"; f.queries[0] != want {
		t.Errorf("query = %q, want %q", f.queries[0], want)
	}
}

// Two runs never share cookies: each has its own jar.
func TestRunSessionsIsolated(t *testing.T) {
	_, srv := newFakeCore(t)
	e := newExecutor(t, srv, nil)
	a, err := e.Run(context.Background(), Request{Flow: "login", Username: "alice", Password: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.Run(context.Background(), Request{Flow: "login", Username: "bob", Password: "pw;123456", MFA: true})
	if err != nil {
		t.Fatal(err)
	}
	if a.Session.ID() == b.Session.ID() {
		t.Fatal("two runs share a session")
	}
	if a.Session.ID() != hexSHA("key-alice") {
		t.Errorf("ID = %s, want sha256 of the sid claim", a.Session.ID())
	}
}

func TestSplitPassword(t *testing.T) {
	const p = "Zm9vYmFyYmF6cXV4X2xvbmdfcGFzc3dvcmRfMTIzNDU2"
	tests := []struct {
		in         string
		mfa        bool
		pass, code string
	}{
		{p, false, p, p},
		{p + ";123456", false, p + ";123456", p + ";123456"},
		{p + ";123456", true, p, "123456"},
		{p + ";12345678", true, p, "12345678"},
		{p + ";abCD1234", true, p, "abCD1234"},
		{p + ";1234567890", true, p + ";1234567890", ""},
		{p + ";12345", true, p + ";12345", ""},
		{p + ";12345a", true, p + ";12345a", ""},
		{p + ";", true, p + ";", ""},
		{p, true, p, ""},
		{"a;b;123456", true, "a;b", "123456"},
		{";123456", true, "", "123456"},
	}
	for _, tt := range tests {
		pass, code := SplitPassword(tt.in, tt.mfa)
		if pass != tt.pass || code != tt.code {
			t.Errorf("SplitPassword(%q, %v) = %q, %q; want %q, %q", tt.in, tt.mfa, pass, code, tt.pass, tt.code)
		}
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := metrics.NewFlow(reg)
	if err != nil {
		t.Fatal(err)
	}
	_, srv := newFakeCore(t)
	if _, err := newExecutor(t, srv, m).Run(context.Background(), Request{Flow: "login", Username: "alice", Password: "secret"}); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(m.GetSeconds, "authentik_outpost_flow_timing_get_seconds"); n != 1 {
		t.Errorf("get series = %d, want 1", n)
	}
	// identification and password answers were posted.
	if n := testutil.CollectAndCount(m.PostSeconds, "authentik_outpost_flow_timing_post_seconds"); n != 2 {
		t.Errorf("post series = %d, want 2", n)
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("New without BaseURL succeeded")
	}
}

func hexSHA(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestRunFirstStageNotIdentification: the executor answers identification
// in the POST that starts a flow. A flow that begins with another stage
// complains about that answer and sends its own challenge, which the
// executor then answers instead of taking the complaint as a refusal.
func TestRunFirstStageNotIdentification(t *testing.T) {
	var methods []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		methods = append(methods, r.Method)
		var answer map[string]any
		_ = json.NewDecoder(r.Body).Decode(&answer)
		w.Header().Set("Content-Type", "application/json")
		switch answer["component"] {
		case StagePassword:
			if answer["password"] != "secret" {
				t.Errorf("password answer %v", answer)
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"component": StageRedirect, "to": "/"})
		default:
			_ = json.NewEncoder(w).Encode(map[string]any{"component": StagePassword,
				"response_errors": map[string]any{"non_field_errors": []any{map[string]any{"string": "Unexpected stage", "code": "invalid"}}}})
		}
	}))
	defer srv.Close()
	res, err := newExecutor(t, srv, nil).Run(context.Background(), Request{Flow: "pw-first", Username: "alice", Password: "secret"})
	if err != nil || res.Outcome != OutcomeSuccess {
		t.Fatalf("Run = %+v, %v; want success", res, err)
	}
	if want := []string{http.MethodPost, http.MethodPost}; strings.Join(methods, " ") != strings.Join(want, " ") {
		t.Errorf("requests %v, want %v", methods, want)
	}
}
