package outposttest

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket/wsjson"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/akoutpost/akoutpost/outpost"
)

// hmacKeySet verifies HS256 tokens with the client secret, as the proxy
// outpost does for providers without a signing key.
type hmacKeySet []byte

func (k hmacKeySet) VerifySignature(_ context.Context, jwt string) ([]byte, error) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return nil, errors.New("malformed")
	}
	mac := hmac.New(sha256.New, k)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, mac.Sum(nil)) {
		return nil, errors.New("bad signature")
	}
	return base64.RawURLEncoding.DecodeString(parts[1])
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so a test sees every hop.
func browser(t *testing.T) *http.Client {
	c := client(t)
	c.Jar, _ = cookiejar.New(nil)
	return c
}

// get fetches u and returns the status, Location and body.
func get(t *testing.T, c *http.Client, method, u string, form url.Values) (int, string, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, u, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

type proxyApp struct {
	clientID, secret, issuer, redirect string
}

func proxyConfig(t *testing.T, s *Server, name string) proxyApp {
	for _, r := range call(t, client(t), "GET", s.URL()+"/api/v3/outposts/proxy/", s.Token("demo-proxy"), nil).results() {
		p := r.(map[string]any)
		if p["name"] == name {
			return proxyApp{clientID: p["client_id"].(string), secret: p["client_secret"].(string),
				issuer:   p["oidc_configuration"].(map[string]any)["issuer"].(string),
				redirect: p["external_host"].(string) + "/outpost.goauthentik.io/callback?X-authentik-auth-callback=true"}
		}
	}
	t.Fatalf("no proxy provider %s", name)
	return proxyApp{}
}

// login follows the authorize redirect chain through the HTML login form
// and returns the code and state the core redirected back with.
func login(t *testing.T, s *Server, b *http.Client, authURL, user, password, code string) (string, url.Values) {
	t.Helper()
	status, loc, _ := get(t, b, "GET", authURL, nil)
	if status != http.StatusFound || !strings.HasPrefix(loc, "/if/flow/default-provider-authorization-implicit-consent/") {
		t.Fatalf("authorize without a session: %d to %q, want the authorization flow's login form", status, loc)
	}
	status, _, page := get(t, b, "GET", s.URL()+loc, nil)
	if status != 200 || !strings.Contains(page, `name="password"`) {
		t.Fatalf("login page: %d %s", status, page)
	}
	next, _ := url.Parse(s.URL() + loc)
	form := url.Values{"username": {user}, "password": {password}, "code": {code}, "next": {next.Query().Get("next")}}
	status, loc, page = get(t, b, "POST", s.URL()+next.Path, form)
	if status != http.StatusFound {
		return "", url.Values{"error_page": {page}}
	}
	status, loc, _ = get(t, b, "GET", s.URL()+loc, nil)
	if status != http.StatusFound {
		t.Fatalf("authorize after login: %d", status)
	}
	u, _ := url.Parse(loc)
	return strings.SplitN(loc, "?", 2)[0], u.Query()
}

func TestOIDCLoginEndToEnd(t *testing.T) {
	s := startDemo(t)
	app := proxyConfig(t, s, "whoami")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ctx = oidc.ClientContext(ctx, client(t))
	prov, err := oidc.NewProvider(ctx, app.issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	cfg := oauth2.Config{ClientID: app.clientID, ClientSecret: app.secret, Endpoint: prov.Endpoint(),
		RedirectURL: app.redirect, Scopes: []string{oidc.ScopeOpenID, "profile", "email", "entitlements", "ak_proxy", "offline_access"}}
	verifier := oauth2.GenerateVerifier()

	// The outpost's websocket, to see the session end later.
	wctx, wcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer wcancel()
	ws := dialOutpost(wctx, t, s, "demo-proxy", "i", 0)

	b := browser(t)
	redirect, q := login(t, s, b, cfg.AuthCodeURL("st-123", oauth2.S256ChallengeOption(verifier)), "alice", "alice-password", "")
	if redirect != strings.SplitN(app.redirect, "?", 2)[0] || q.Get("state") != "st-123" || q.Get("code") == "" ||
		q.Get("X-authentik-auth-callback") != "true" {
		t.Fatalf("redirected to %s with %v", redirect, q)
	}
	if _, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption("wrong-verifier-wrong-verifier-wrong-verifier")); err == nil {
		t.Fatal("exchange with a wrong PKCE verifier succeeded")
	}
	// The failed exchange used the code up; log in again (the session
	// cookie skips the form).
	status, loc, _ := get(t, b, "GET", cfg.AuthCodeURL("st-2", oauth2.S256ChallengeOption(verifier)), nil)
	u, _ := url.Parse(loc)
	if status != http.StatusFound || u.Query().Get("code") == "" {
		t.Fatalf("authorize with a session: %d %s", status, loc)
	}
	tok, err := cfg.Exchange(ctx, u.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	v := oidc.NewVerifier(app.issuer, hmacKeySet(app.secret), &oidc.Config{ClientID: app.clientID, SupportedSigningAlgs: []string{"HS256"}})
	for name, raw := range map[string]string{"id token": rawID, "access token": tok.AccessToken} {
		idt, err := v.Verify(ctx, raw)
		if err != nil {
			t.Fatalf("verifying the %s: %v", name, err)
		}
		var c struct {
			Sub, Email, PreferredUsername, SID string
			Username                           string   `json:"preferred_username"`
			Groups                             []string `json:"groups"`
			AKProxy                            struct {
				UserAttributes map[string]any `json:"user_attributes"`
			} `json:"ak_proxy"`
			SessionID string `json:"sid"`
		}
		if err := idt.Claims(&c); err != nil {
			t.Fatal(err)
		}
		sessions := s.Sessions()
		if c.Username != "alice" || c.Email != "alice@example.com" || len(c.Groups) != 2 || len(sessions) != 1 ||
			c.SessionID != sessions[0].ID || c.Sub == "" {
			t.Errorf("%s claims = %+v, sessions %+v", name, c, sessions)
		}
		headers, _ := c.AKProxy.UserAttributes["additionalHeaders"].(map[string]any)
		if headers["X-Demo-Group"] != "demo-users" || c.AKProxy.UserAttributes["basic_user"] != "alice" {
			t.Errorf("%s ak_proxy = %+v", name, c.AKProxy)
		}
	}
	info, err := prov.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil || info.Email != "alice@example.com" {
		t.Fatalf("userinfo: %+v %v", info, err)
	}
	// Refresh works once; the old refresh token is then spent.
	old := tok.RefreshToken
	if old == "" {
		t.Fatal("no refresh token despite offline_access")
	}
	tok.Expiry = time.Now().Add(-time.Minute)
	if _, err := cfg.TokenSource(ctx, tok).Token(); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if _, err := cfg.TokenSource(ctx, tok).Token(); err == nil {
		t.Error("a spent refresh token worked again")
	}

	// Ending the session tells every outpost, with the sid of the tokens.
	sid := s.Sessions()[0].ID
	status, loc, _ = get(t, b, "GET", s.URL()+"/application/o/whoami/end-session/", nil)
	if status != http.StatusFound {
		t.Fatalf("end-session: %d", status)
	}
	if status, _, page := get(t, b, "GET", s.URL()+loc, nil); status != 200 || !strings.Contains(page, "logged out") {
		t.Fatalf("invalidation flow: %d %s", status, page)
	}
	for {
		var m outpost.Message
		if err := wsjson.Read(wctx, ws, &m); err != nil {
			t.Fatalf("waiting for session end: %v", err)
		}
		if m.Instruction == outpost.InstructionSessionEnd {
			if m.Args["session_id"] != sid || m.Args["type"] != "event.session.end" {
				t.Errorf("session end args = %v, want sid %s", m.Args, sid)
			}
			break
		}
	}
	if len(s.Sessions()) != 0 {
		t.Error("session still listed after logout")
	}
}

func TestAuthorizeRefusals(t *testing.T) {
	s := startDemo(t)
	app := proxyConfig(t, s, "forward")
	b := browser(t)
	authz := func(v url.Values) (int, string, string) {
		return get(t, b, "GET", s.URL()+"/application/o/authorize/?"+v.Encode(), nil)
	}
	base := url.Values{"client_id": {app.clientID}, "response_type": {"code"}, "scope": {"openid"}, "redirect_uri": {app.redirect}}
	for _, tc := range []struct {
		name   string
		change url.Values
		want   int
	}{
		{"unknown client", url.Values{"client_id": {"nope"}}, 400},
		{"foreign redirect", url.Values{"redirect_uri": {"https://evil.example/cb"}}, 400},
		{"redirect under another path", url.Values{"redirect_uri": {"http://forward.localhost:9000/evil?X-authentik-auth-callback=true"}}, 400},
		{"valid, not logged in", url.Values{}, 302},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := url.Values{}
			for k, x := range base {
				v[k] = x
			}
			for k, x := range tc.change {
				v[k] = x
			}
			status, loc, _ := authz(v)
			if status != tc.want || status == 400 && loc != "" {
				t.Errorf("status %d location %q, want %d without redirect", status, loc, tc.want)
			}
		})
	}
	// Wrong password and a missing MFA code keep the user on the form.
	cfg := oauth2.Config{ClientID: app.clientID, Endpoint: oauth2.Endpoint{AuthURL: s.URL() + "/application/o/authorize/"}, RedirectURL: app.redirect}
	if _, q := login(t, s, b, cfg.AuthCodeURL("x"), "alice", "wrong", ""); !strings.Contains(q.Get("error_page"), "Invalid username or password") {
		t.Errorf("wrong password: %v", q)
	}
	if _, q := login(t, s, b, cfg.AuthCodeURL("x"), "carol", "carol-password", "000000"); !strings.Contains(q.Get("error_page"), "valid code") {
		t.Errorf("bad MFA code: %v", q)
	}
	code, err := s.TOTPCode("carol", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, q := login(t, s, b, cfg.AuthCodeURL("x"), "carol", "carol-password", code); q.Get("code") == "" {
		t.Errorf("carol with TOTP: %v", q)
	}
	// The login page never redirects off the core.
	status, loc, _ := get(t, browser(t), "POST", s.URL()+"/if/flow/default-authentication-flow/",
		url.Values{"username": {"bob"}, "password": {"bob-password"}, "next": {"//evil.example/"}})
	if status != http.StatusFound || loc != "/" {
		t.Errorf("open redirect: %d %q", status, loc)
	}
}

func TestClientCredentialsAndIntrospection(t *testing.T) {
	s := startDemo(t)
	app := proxyConfig(t, s, "whoami")
	c := client(t)
	tokURL := s.URL() + "/application/o/token/"
	status, _, body := get(t, c, "POST", tokURL, url.Values{"grant_type": {"client_credentials"}, "client_id": {app.clientID},
		"username": {"bob"}, "password": {"bob-app-password"}, "scope": {"openid ak_proxy"}})
	if status != 200 || !strings.Contains(body, "id_token") {
		t.Fatalf("client_credentials: %d %s", status, body)
	}
	// authentik's token endpoint takes only an app password (a token with
	// intent app_password) of that very user: the user's own password, and
	// another user's app password, are refused.
	for _, tc := range []struct{ name, user, password string }{
		{"wrong password", "bob", "nope"},
		{"the user's own password", "bob", "bob-password"},
		{"another user's app password", "alice", "bob-app-password"},
		{"username in another case", "Bob", "bob-app-password"},
	} {
		if status, _, _ := get(t, c, "POST", tokURL, url.Values{"grant_type": {"client_credentials"}, "client_id": {app.clientID},
			"username": {tc.user}, "password": {tc.password}}); status != 400 {
			t.Errorf("%s: %d, want 400", tc.name, status)
		}
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := jsonDecode(body, &tok); err != nil {
		t.Fatal(err)
	}
	form := url.Values{"token": {tok.AccessToken}, "client_id": {app.clientID}, "client_secret": {app.secret}}
	if _, _, body := get(t, c, "POST", s.URL()+"/application/o/introspect/", form); !strings.Contains(body, `"active":true`) {
		t.Errorf("introspection: %s", body)
	}
	get(t, c, "POST", s.URL()+"/application/o/revoke/", form)
	if _, _, body := get(t, c, "POST", s.URL()+"/application/o/introspect/", form); !strings.Contains(body, `"active":false`) {
		t.Errorf("introspection after revoke: %s", body)
	}
}

func TestRS256SigningKey(t *testing.T) {
	bp := `version: 1
entries:
  - model: authentik_crypto.certificatekeypair
    id: k
    identifiers: {name: signer}
  - model: authentik_providers_proxy.proxyprovider
    id: p
    identifiers: {name: p}
    attrs: {mode: forward_single, external_host: "http://app.localhost", signing_key: !KeyOf k}
  - model: authentik_core.application
    identifiers: {slug: app}
    attrs: {name: App, provider: !KeyOf p}
  - model: authentik_core.user
    id: u
    identifiers: {username: u}
    attrs: {password: pw}
  - model: authentik_core.token
    identifiers: {identifier: u-app}
    attrs: {intent: app_password, user: !KeyOf u, key: u-app-password}
  - model: authentik_outposts.outpost
    identifiers: {name: o}
    attrs: {type: proxy, providers: [!KeyOf p]}
`
	s, err := NewServer([]byte(bp))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p := call(t, client(t), "GET", s.URL()+"/api/v3/outposts/proxy/", s.Token("o"), nil).results()[0].(map[string]any)
	oc := p["oidc_configuration"].(map[string]any)
	if algs := oc["id_token_signing_alg_values_supported"].([]any); algs[0] != "RS256" {
		t.Fatalf("algs = %v", algs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ctx = oidc.ClientContext(ctx, client(t))
	prov, err := oidc.NewProvider(ctx, oc["issuer"].(string))
	if err != nil {
		t.Fatal(err)
	}
	_, _, body := get(t, client(t), "POST", s.URL()+"/application/o/token/", url.Values{"grant_type": {"password"},
		"client_id": {p["client_id"].(string)}, "username": {"u"}, "password": {"u-app-password"}})
	var tok struct {
		IDToken string `json:"id_token"`
	}
	if err := jsonDecode(body, &tok); err != nil {
		t.Fatal(err)
	}
	if _, err := prov.Verifier(&oidc.Config{ClientID: p["client_id"].(string)}).Verify(ctx, tok.IDToken); err != nil {
		t.Fatalf("RS256 token does not verify against the JWKS: %v", err)
	}
}
