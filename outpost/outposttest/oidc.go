package outposttest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// OAuth2/OIDC for proxy providers, as authentik's OAuth2 provider serves
// the proxy outposts: authorization code flow (PKCE optional), refresh,
// client credentials and password grants, userinfo, introspection,
// revocation, JWKS and end session.

// codeLifetime is how long an authorization code stays valid.
const codeLifetime = time.Minute

type authCode struct {
	provider  *provider
	user      *user
	session   string // the session's id (sid), "" without a session
	redirect  string
	scopes    []string
	nonce     string
	challenge string
	method    string
	authTime  time.Time
	amr       []string
	expires   time.Time
}

type refreshGrant struct {
	provider *provider
	user     *user
	session  string
	scopes   []string
	authTime time.Time
	amr      []string
	expires  time.Time
}

type oauthStore struct {
	mu      sync.Mutex
	codes   map[string]*authCode
	refresh map[string]*refreshGrant
	revoked map[string]bool // access token uids
}

func (o *oauthStore) init() {
	o.codes = map[string]*authCode{}
	o.refresh = map[string]*refreshGrant{}
	o.revoked = map[string]bool{}
}

func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *Server) oidcRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /application/o/{slug}/.well-known/openid-configuration", s.handleDiscovery)
	mux.HandleFunc("GET /application/o/{slug}/jwks/{$}", s.handleJWKS)
	mux.HandleFunc("/application/o/{slug}/end-session/{$}", s.handleEndSession)
	mux.HandleFunc("/application/o/authorize/{$}", s.handleAuthorize)
	mux.HandleFunc("POST /application/o/token/{$}", s.handleToken)
	mux.HandleFunc("/application/o/userinfo/{$}", s.handleUserinfo)
	mux.HandleFunc("POST /application/o/introspect/{$}", s.handleIntrospect)
	mux.HandleFunc("POST /application/o/revoke/{$}", s.handleRevoke)
	mux.HandleFunc("/if/flow/{slug}/{$}", s.handleFlowPage)
}

// appBySlug returns the application and its proxy provider.
func (s *Server) appBySlug(slug string) (*application, *provider) {
	for _, a := range s.m.apps {
		if a.slug == slug && a.provider != nil && a.provider.kind == kindProxy {
			return a, a.provider
		}
	}
	return nil, nil
}

func (s *Server) providerByClientID(id string) (*provider, *application) {
	for _, p := range s.m.providers {
		if p.kind == kindProxy && id != "" && constantTimeEqual(p.clientID, id) {
			if a, back := s.m.appOf(p); a != nil && !back {
				return p, a
			}
		}
	}
	return nil, nil
}

func (s *Server) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	a, p := s.appBySlug(r.PathValue("slug"))
	if a == nil {
		writeError(w, http.StatusNotFound, "Not found.")
		return
	}
	base := baseURL(r)
	cfg := s.oidcConfiguration(p, a, base)
	cfg["revocation_endpoint"] = base + "/application/o/revoke/"
	cfg["response_modes_supported"] = []string{"query", "fragment", "form_post"}
	cfg["grant_types_supported"] = []string{"authorization_code", "refresh_token", "implicit", "client_credentials", "password"}
	cfg["scopes_supported"] = []string{"openid", "email", "profile", "entitlements", "ak_proxy", "offline_access"}
	cfg["claims_supported"] = []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "amr", "nonce",
		"email", "email_verified", "name", "given_name", "preferred_username", "nickname", "groups", "entitlements", "ak_proxy"}
	cfg["code_challenge_methods_supported"] = []string{"plain", "S256"}
	cfg["request_parameter_supported"] = false
	cfg["claims_parameter_supported"] = false
	cfg["acr_values_supported"] = []string{"goauthentik.io/providers/oauth2/default"}
	writeJSON(w, http.StatusOK, cfg)
}

// signingKey returns the key tokens of p are signed with: the client
// secret (HS256) unless the provider has a signing key (RS256).
func signingKey(p *provider) (key any, kid string) {
	if p.signingKey != nil {
		if k, err := parseKeyPEM(p.signingKey.keyPEM); err == nil {
			if rk, ok := k.(*rsa.PrivateKey); ok {
				return rk, keyID(&rk.PublicKey)
			}
		}
	}
	return []byte(p.clientSecret), ""
}

func keyID(pub *rsa.PublicKey) string {
	h := sha256.Sum256(pub.N.Bytes())
	return hex.EncodeToString(h[:16])
}

func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	a, p := s.appBySlug(r.PathValue("slug"))
	if a == nil {
		writeError(w, http.StatusNotFound, "Not found.")
		return
	}
	keys := []any{}
	if k, kid := signingKey(p); kid != "" {
		pub := &k.(*rsa.PrivateKey).PublicKey
		keys = append(keys, map[string]any{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
			"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes())})
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": keys})
}

// allowedRedirects are authentik's defaults for proxy providers (the
// callback under external_host, and external_host itself, both with
// ?X-authentik-auth-callback=true, joined the way Python's urljoin does)
// plus any the blueprint lists.
func allowedRedirects(p *provider) []redirectURI {
	out := slices.Clone(p.redirectURIs)
	if base, err := url.Parse(p.externalHost); err == nil {
		cb := base.ResolveReference(&url.URL{Path: "outpost.goauthentik.io/callback"})
		out = append(out, redirectURI{mode: "strict", url: cb.String() + "?X-authentik-auth-callback=true"},
			redirectURI{mode: "strict", url: p.externalHost + "?X-authentik-auth-callback=true"})
	}
	return out
}

func redirectAllowed(p *provider, uri string) bool {
	for _, a := range allowedRedirects(p) {
		switch a.mode {
		case "strict":
			if a.url == uri {
				return true
			}
		case "regex":
			if re, err := regexp.Compile("^(?:" + a.url + ")$"); err == nil && re.MatchString(uri) {
				return true
			}
		}
	}
	return false
}

func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, http.StatusBadRequest, "Bad request", "The request could not be parsed.")
		return
	}
	q := r.Form
	s.mu.RLock()
	p, a := s.providerByClientID(q.Get("client_id"))
	var redirectOK bool
	var loginFlow string
	if p != nil {
		redirectOK = redirectAllowed(p, q.Get("redirect_uri"))
		loginFlow = p.authorization.slug
	}
	s.mu.RUnlock()
	if p == nil {
		s.errorPage(w, http.StatusBadRequest, "Invalid client", "The client identifier (client_id) is missing or invalid.")
		return
	}
	if !redirectOK {
		// Never redirect to an unregistered URI: show the error instead.
		s.errorPage(w, http.StatusBadRequest, "Redirect URI Error",
			"The request fails due to a missing, invalid, or mismatching redirection URI (redirect_uri).")
		return
	}
	redirect := func(params url.Values) {
		u, _ := url.Parse(q.Get("redirect_uri"))
		rq := u.Query()
		for k, v := range params {
			rq[k] = v
		}
		if st := q.Get("state"); st != "" {
			rq.Set("state", st)
		}
		u.RawQuery = rq.Encode()
		http.Redirect(w, r, u.String(), http.StatusFound)
	}
	if q.Get("response_type") != "code" {
		redirect(url.Values{"error": {"unsupported_response_type"}})
		return
	}
	method := q.Get("code_challenge_method")
	if q.Get("code_challenge") != "" && method == "" {
		method = "plain"
	}
	if method != "" && method != "plain" && method != "S256" {
		redirect(url.Values{"error": {"invalid_request"}, "error_description": {"unsupported code_challenge_method"}})
		return
	}
	sess := s.sessions.fromRequest(r)
	var u *user
	if sess != nil {
		u = sess.currentUser()
	}
	if u == nil || q.Get("prompt") == "login" && r.Method == http.MethodGet && !q.Has("ak_login_done") {
		next := "/application/o/authorize/?" + withLoginDone(q).Encode()
		http.Redirect(w, r, "/if/flow/"+url.PathEscape(loginFlow)+"/?"+url.Values{"next": {next}}.Encode(), http.StatusFound)
		return
	}
	s.mu.RLock()
	ok, _ := s.m.canAccess(u, a)
	s.mu.RUnlock()
	if !ok {
		s.errorPage(w, http.StatusForbidden, "Permission denied", "You may not use "+a.name+".")
		return
	}
	s.sessions.mu.Lock()
	authTime, amr := sess.authAt, slices.Clone(sess.amr)
	s.sessions.mu.Unlock()
	code := randomToken(32)
	s.oauth.mu.Lock()
	s.oauth.codes[code] = &authCode{provider: p, user: u, session: sess.id(), redirect: q.Get("redirect_uri"),
		scopes: strings.Fields(q.Get("scope")), nonce: q.Get("nonce"), challenge: q.Get("code_challenge"),
		method: method, authTime: authTime, amr: amr, expires: time.Now().Add(codeLifetime)}
	s.oauth.mu.Unlock()
	redirect(url.Values{"code": {code}})
}

// withLoginDone marks the authorize request to continue after a forced
// login (prompt=login) instead of looping.
func withLoginDone(q url.Values) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = v
	}
	if q.Get("prompt") == "login" {
		out.Set("ak_login_done", "1")
	}
	return out
}

// claims builds the ID token claims of u for p, as authentik's default
// scope mappings do. Callers hold s.mu.
func (s *Server) claims(p *provider, a *application, u *user, base string, scopes []string, sid string,
	authTime time.Time, amr []string) map[string]any {
	now := time.Now()
	validity, err := timedelta(p.tokenValidity)
	if err != nil {
		validity = time.Hour
	}
	if authTime.IsZero() {
		authTime = now
	}
	c := map[string]any{
		"iss": issuer(base, a), "sub": s.m.uid(u), "aud": p.clientID, "exp": now.Add(validity).Unix(),
		"iat": now.Unix(), "auth_time": authTime.Unix(), "acr": "goauthentik.io/providers/oauth2/default",
	}
	if len(amr) > 0 {
		c["amr"] = amr
	}
	if sid != "" {
		c["sid"] = sid
	}
	for _, sc := range scopes {
		switch sc {
		case "email":
			c["email"], c["email_verified"] = u.email, true
		case "profile":
			groups := []string{}
			for _, g := range allGroups(u) {
				groups = append(groups, g.name)
			}
			given := u.name
			c["name"], c["given_name"], c["preferred_username"], c["nickname"], c["groups"] = u.name, given, u.username, u.username, groups
		case "entitlements":
			c["entitlements"] = []string{}
		case "ak_proxy":
			c["ak_proxy"] = map[string]any{"user_attributes": mergedAttributes(u), "is_superuser": u.superuser()}
		}
	}
	return c
}

// tokenResponse issues an access token, an ID token and, with
// offline_access, a refresh token.
func (s *Server) tokenResponse(w http.ResponseWriter, r *http.Request, p *provider, a *application, u *user,
	scopes []string, sid, nonce string, authTime time.Time, amr []string) {
	base := baseURL(r)
	s.mu.RLock()
	idc := s.claims(p, a, u, base, scopes, sid, authTime, amr)
	key, kid := signingKey(p)
	clientID, refreshValidity := p.clientID, p.refreshValidity
	s.mu.RUnlock()
	if nonce != "" {
		idc["nonce"] = nonce
	}
	atc := map[string]any{}
	for k, v := range idc {
		atc[k] = v
	}
	atc["azp"], atc["uid"], atc["scope"] = clientID, randomToken(16), strings.Join(scopes, " ")
	idToken, err1 := signJWT(key, kid, idc)
	access, err2 := signJWT(key, kid, atc)
	if err1 != nil || err2 != nil {
		oauthError(w, http.StatusInternalServerError, "server_error", "signing failed")
		return
	}
	out := map[string]any{"access_token": access, "token_type": "Bearer", "id_token": idToken,
		"expires_in": idc["exp"].(int64) - idc["iat"].(int64), "scope": strings.Join(scopes, " ")}
	if slices.Contains(scopes, "offline_access") {
		rt := randomToken(48)
		validity, err := timedelta(refreshValidity)
		if err != nil {
			validity = 30 * 24 * time.Hour
		}
		s.oauth.mu.Lock()
		s.oauth.refresh[rt] = &refreshGrant{provider: p, user: u, session: sid, scopes: scopes, authTime: authTime,
			amr: amr, expires: time.Now().Add(validity)}
		s.oauth.mu.Unlock()
		out["refresh_token"] = rt
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

// clientCredentials reads the client id and secret from Basic auth or
// the form.
func clientCredentials(r *http.Request) (id, secret string) {
	if u, p, ok := r.BasicAuth(); ok {
		id, _ = url.QueryUnescape(u)
		secret, _ = url.QueryUnescape(p)
		return id, secret
	}
	return r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "malformed form")
		return
	}
	f := r.PostForm
	id, secret := clientCredentials(r)
	s.mu.RLock()
	p, a := s.providerByClientID(id)
	s.mu.RUnlock()
	if p == nil {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "unknown client")
		return
	}
	grant := f.Get("grant_type")
	confidential := grant == "authorization_code" || grant == "refresh_token"
	if confidential && !constantTimeEqual(secret, p.clientSecret) {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	switch grant {
	case "authorization_code":
		s.oauth.mu.Lock()
		c := s.oauth.codes[f.Get("code")]
		delete(s.oauth.codes, f.Get("code")) // single use, even when the exchange fails
		s.oauth.mu.Unlock()
		if c == nil || c.provider != p || time.Now().After(c.expires) {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "the code is invalid or expired")
			return
		}
		if f.Get("redirect_uri") != c.redirect {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri does not match the authorization request")
			return
		}
		if !pkceOK(c, f.Get("code_verifier")) {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "the code verifier does not match the challenge")
			return
		}
		s.tokenResponse(w, r, p, a, c.user, c.scopes, c.session, c.nonce, c.authTime, c.amr)
	case "refresh_token":
		s.oauth.mu.Lock()
		g := s.oauth.refresh[f.Get("refresh_token")]
		delete(s.oauth.refresh, f.Get("refresh_token"))
		s.oauth.mu.Unlock()
		if g == nil || g.provider != p || time.Now().After(g.expires) {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "the refresh token is invalid or expired")
			return
		}
		s.tokenResponse(w, r, p, a, g.user, g.scopes, g.session, "", g.authTime, g.amr)
	case "client_credentials", "password":
		// authentik takes a username and one of that user's app passwords
		// (a token with intent app_password) here, never the user's own
		// password.
		s.mu.RLock()
		u := s.m.userByName(f.Get("username"))
		ok := u != nil && u.isActive && s.m.appPasswordValid(u, f.Get("password"))
		if ok {
			ok, _ = s.m.canAccess(u, a)
		}
		s.mu.RUnlock()
		if !ok {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "invalid username, password or access")
			return
		}
		scopes := strings.Fields(f.Get("scope"))
		if len(scopes) == 0 {
			scopes = []string{"openid", "profile", "email", "entitlements", "ak_proxy"}
		}
		s.tokenResponse(w, r, p, a, u, scopes, "", "", time.Now(), []string{"pwd", "app"})
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type is not supported")
	}
}

func pkceOK(c *authCode, verifier string) bool {
	switch c.method {
	case "":
		return true
	case "plain":
		return verifier != "" && constantTimeEqual(verifier, c.challenge)
	case "S256":
		sum := sha256.Sum256([]byte(verifier))
		return verifier != "" && constantTimeEqual(base64.RawURLEncoding.EncodeToString(sum[:]), c.challenge)
	}
	return false
}

// accessClaims verifies an access token the core issued and returns its
// claims and provider.
func (s *Server) accessClaims(token string) (map[string]any, *provider, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, nil, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, nil, false
	}
	var unverified struct {
		AZP string `json:"azp"`
	}
	if json.Unmarshal(payload, &unverified) != nil {
		return nil, nil, false
	}
	s.mu.RLock()
	p, _ := s.providerByClientID(unverified.AZP)
	var key any
	if p != nil {
		key, _ = signingKey(p)
	}
	s.mu.RUnlock()
	if p == nil {
		return nil, nil, false
	}
	claims, err := verifyJWT(token, key)
	if err != nil {
		return nil, nil, false
	}
	exp, _ := claims["exp"].(float64)
	uid, _ := claims["uid"].(string)
	s.oauth.mu.Lock()
	revoked := s.oauth.revoked[uid]
	s.oauth.mu.Unlock()
	if revoked || time.Now().Unix() > int64(exp) {
		return nil, nil, false
	}
	return claims, p, true
}

func (s *Server) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	token := ""
	if scheme, t, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		token = t
	} else if err := r.ParseForm(); err == nil {
		token = r.Form.Get("access_token")
	}
	claims, _, ok := s.accessClaims(token)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		oauthError(w, http.StatusUnauthorized, "invalid_token", "the access token is invalid")
		return
	}
	for _, k := range []string{"iss", "aud", "exp", "iat", "auth_time", "acr", "amr", "azp", "uid", "scope", "nonce", "sid"} {
		delete(claims, k)
	}
	writeJSON(w, http.StatusOK, claims)
}

func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "malformed form")
		return
	}
	id, secret := clientCredentials(r)
	s.mu.RLock()
	p, _ := s.providerByClientID(id)
	s.mu.RUnlock()
	if p == nil || !constantTimeEqual(secret, p.clientSecret) {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	claims, tp, ok := s.accessClaims(r.PostForm.Get("token"))
	if !ok || tp != p {
		writeJSON(w, http.StatusOK, map[string]any{"active": false})
		return
	}
	claims["active"], claims["client_id"] = true, p.clientID
	writeJSON(w, http.StatusOK, claims)
}

func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "malformed form")
		return
	}
	tok := r.PostForm.Get("token")
	s.oauth.mu.Lock()
	delete(s.oauth.refresh, tok)
	s.oauth.mu.Unlock()
	if claims, _, ok := s.accessClaims(tok); ok {
		uid, _ := claims["uid"].(string)
		s.oauth.mu.Lock()
		s.oauth.revoked[uid] = true
		s.oauth.mu.Unlock()
	}
	w.WriteHeader(http.StatusOK)
}

// handleEndSession sends the browser to the provider's invalidation flow,
// which ends the core session, as authentik's end-session view does.
func (s *Server) handleEndSession(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	a, p := s.appBySlug(r.PathValue("slug"))
	flow := "default-provider-invalidation-flow"
	if p != nil && p.invalidation != nil {
		flow = p.invalidation.slug
	}
	s.mu.RUnlock()
	if a == nil {
		s.errorPage(w, http.StatusNotFound, "Not found", "No such application.")
		return
	}
	http.Redirect(w, r, "/if/flow/"+url.PathEscape(flow)+"/?"+url.Values{"app": {a.slug}}.Encode(), http.StatusFound)
}
