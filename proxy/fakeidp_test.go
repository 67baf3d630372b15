package proxy

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeIDP is a minimal authentik-like OAuth2/OIDC provider for one proxy
// application: authorize approves at once as the configured user, token
// checks PKCE and issues HS256 tokens signed with the client secret, as
// authentik does for proxy providers.
type fakeIDP struct {
	t      testing.TB
	srv    *httptest.Server
	secret string
	client string

	mu       sync.Mutex
	user     map[string]any // claims of the user who "logs in"
	codes    map[string]fakeCode
	tokens   map[string]map[string]any // introspectable tokens
	appPass  map[string]string         // username -> app password
	requests []string
	hosts    []string
	failNext bool
	now      func() time.Time
}

type fakeCode struct {
	challenge, redirectURI string
}

func newFakeIDP(t testing.TB) *fakeIDP {
	f := &fakeIDP{
		t: t, secret: "client-secret-0123456789", client: "client-id-1",
		codes: map[string]fakeCode{}, tokens: map[string]map[string]any{}, appPass: map[string]string{},
		now: time.Now,
		user: map[string]any{
			"sub": "user-sub-1", "preferred_username": "alice", "email": "alice@example.test",
			"name": "Alice Example", "groups": []string{"admins", "staff"}, "entitlements": []string{"e1"},
			"sid": "authentik-session-hash-1",
			"ak_proxy": map[string]any{"user_attributes": map[string]any{
				"additionalHeaders": map[string]any{"X-Foo": "bar"},
				"basic_user":        "alice-basic", "basic_pass": "s3cret",
			}},
		},
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeIDP) issuer() string { return f.srv.URL + "/application/o/app/" }

func (f *fakeIDP) oidcConfig() map[string]any {
	u := f.srv.URL
	return map[string]any{
		"issuer":                                f.issuer(),
		"authorization_endpoint":                u + "/application/o/authorize/",
		"token_endpoint":                        u + "/application/o/token/",
		"userinfo_endpoint":                     u + "/application/o/userinfo/",
		"end_session_endpoint":                  u + "/application/o/app/end-session/",
		"introspection_endpoint":                u + "/application/o/introspect/",
		"jwks_uri":                              u + "/application/o/app/jwks/",
		"id_token_signing_alg_values_supported": []string{"HS256"},
	}
}

func (f *fakeIDP) sign(claims map[string]any) string {
	h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	b, _ := json.Marshal(claims)
	p := base64.RawURLEncoding.EncodeToString(b)
	m := hmac.New(sha256.New, []byte(f.secret))
	m.Write([]byte(h + "." + p))
	return h + "." + p + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (f *fakeIDP) tokenClaims() map[string]any {
	c := map[string]any{}
	for k, v := range f.user {
		c[k] = v
	}
	c["iss"] = f.issuer()
	c["aud"] = f.client
	c["exp"] = f.now().Add(time.Hour).Unix()
	c["iat"] = f.now().Unix()
	return c
}

func (f *fakeIDP) serve(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Method+" "+r.URL.Path)
	f.hosts = append(f.hosts, r.Host)
	switch r.URL.Path {
	case "/application/o/authorize/":
		q := r.URL.Query()
		if q.Get("client_id") != f.client || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
			http.Error(w, "bad authorize request", http.StatusBadRequest)
			return
		}
		code := "code-" + q.Get("state")[:8] + "-" + time.Now().Format("150405.000000000")
		f.codes[code] = fakeCode{challenge: q.Get("code_challenge"), redirectURI: q.Get("redirect_uri")}
		sep := "&"
		if !strings.Contains(q.Get("redirect_uri"), "?") {
			sep = "?"
		}
		http.Redirect(w, r, q.Get("redirect_uri")+sep+"code="+code+"&state="+q.Get("state"), http.StatusFound)
	case "/application/o/token/":
		switch r.PostForm.Get("grant_type") {
		case "authorization_code":
			c, ok := f.codes[r.PostForm.Get("code")]
			delete(f.codes, r.PostForm.Get("code"))
			sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
			if f.failNext || !ok || r.PostForm.Get("client_secret") != f.secret ||
				base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge || r.PostForm.Get("redirect_uri") != c.redirectURI {
				f.failNext = false
				w.WriteHeader(http.StatusBadRequest)
				w.Write([]byte(`{"error":"invalid_grant"}`))
				return
			}
			claims := f.tokenClaims()
			at := f.sign(claims)
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"access_token": at, "id_token": f.sign(claims), "token_type": "Bearer", "expires_in": 3600})
		case "client_credentials":
			if p, ok := f.appPass[r.PostForm.Get("username")]; !ok || p != r.PostForm.Get("password") {
				w.WriteHeader(http.StatusBadRequest)
				w.Write([]byte(`{"error":"invalid_grant"}`))
				return
			}
			claims := f.tokenClaims()
			claims["preferred_username"] = r.PostForm.Get("username")
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"access_token": "opaque", "id_token": f.sign(claims), "token_type": "Bearer"})
		default:
			http.Error(w, "unsupported grant", http.StatusBadRequest)
		}
	case "/application/o/introspect/":
		c, ok := f.tokens[r.PostForm.Get("token")]
		w.Header().Set("Content-Type", "application/json")
		if !ok || r.PostForm.Get("client_secret") != f.secret {
			w.Write([]byte(`{"active":false}`))
			return
		}
		out := map[string]any{"active": true}
		for k, v := range c {
			out[k] = v
		}
		json.NewEncoder(w).Encode(out)
	case "/application/o/app/end-session/":
		w.Write([]byte("You've logged out"))
	default:
		http.NotFound(w, r)
	}
}
