package proxy

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/gorilla/securecookie"
	"golang.org/x/oauth2"

	"github.com/akoutpost/akoutpost/outpost"
)

// The outpost's own paths.
const (
	pathPrefix   = "/outpost.goauthentik.io"
	pathPing     = pathPrefix + "/ping"
	pathStart    = pathPrefix + "/start"
	pathCallback = pathPrefix + "/callback"
	pathSignOut  = pathPrefix + "/sign_out"
	pathNginx    = pathPrefix + "/auth/nginx"
	pathTraefik  = pathPrefix + "/auth/traefik"
	pathCaddy    = pathPrefix + "/auth/caddy"
	pathEnvoy    = pathPrefix + "/auth/envoy"

	callbackParam = "X-authentik-auth-callback"
	logoutParam   = "X-authentik-logout"
)

// application is one proxy provider object, ready to serve. It is
// immutable once built, but for its session cache.
type application struct {
	p    *Provider
	pk   int
	name string
	slug string
	mode mode

	external         *url.URL
	internal         *url.URL
	insecureUpstream bool
	upstream         *httputil.ReverseProxy

	clientID     string
	clientSecret string
	scopes       []string
	oauth        *oauth2.Config
	verifier     *oidc.IDTokenVerifier
	core         *http.Client // host-rewriting client for token and introspection
	endSession   string
	introspect   string
	tokenURL     string
	jwksURL      string

	cookieName   string
	cookieDomain string
	secure       bool
	sessionCodec *securecookie.SecureCookie
	stateCodec   *securecookie.SecureCookie

	skip          []*regexp.Regexp
	basicAuth     bool
	basicUserAttr string
	basicPassAttr string
	interceptAuth bool
	validity      time.Duration
	cert          *tls.Certificate

	outpostName string
	version     string

	// sessions, observers and configErrors are the mutable parts: caches,
	// see sessionCache and observers, and the limiter of configError's log.
	sessions     sessionCache
	observers    observers
	configErrors logLimiter
}

// stateLifetime bounds how long a login may take between start and callback.
const stateLifetime = 15 * time.Minute

// initCodecs derives this application's cookie keys from secret. Keys are
// per application (the client ID is the HKDF info), so a cookie made for
// one provider never decodes for another, even when secrets are shared.
func (a *application) initCodecs(secret []byte) error {
	keys, err := hkdf.Key(sha256.New, secret, nil, "akoutpost proxy cookies "+a.clientID, 128)
	if err != nil {
		return fmt.Errorf("deriving cookie keys: %w", err)
	}
	a.sessionCodec = securecookie.New(keys[0:32], keys[32:64]).
		MaxAge(int(a.validity/time.Second) + 60).SetSerializer(securecookie.JSONEncoder{})
	a.stateCodec = securecookie.New(keys[64:96], keys[96:128]).
		MaxAge(int(stateLifetime / time.Second)).SetSerializer(securecookie.JSONEncoder{})
	return nil
}

// initOIDC prepares the OAuth2 client and token verifier. Browser-facing
// URLs (authorize, end session) and the issuer move to the outpost's
// browser URL when it names another host than the API's URLs, and
// back-channel calls then present that host, since authentik derives the
// issuer from the request's host.
func (a *application) initOIDC(w wireOIDC, u outpost.Update) error {
	if w.AuthorizationEndpoint == "" || w.TokenEndpoint == "" {
		return errors.New("oidc_configuration lacks authorization or token endpoint")
	}
	authURL, endSession, issuer := w.AuthorizationEndpoint, w.EndSessionEndpoint, w.Issuer
	var hostHeader, protoHeader string
	if b, err := url.Parse(u.Outpost.BrowserURL); err == nil && b.Host != "" {
		if t, err := url.Parse(w.AuthorizationEndpoint); err == nil && !strings.EqualFold(t.Host, b.Host) {
			authURL = rehost(authURL, b)
			endSession = rehost(endSession, b)
			issuer = rehost(issuer, b)
			hostHeader, protoHeader = b.Host, b.Scheme
		}
	}
	base := a.p.coreClient()
	a.core = base
	if hostHeader != "" {
		rt := base.Transport
		if rt == nil {
			rt = http.DefaultTransport
		}
		a.core = &http.Client{Timeout: base.Timeout, Transport: hostRewriter{rt: rt, host: hostHeader, proto: protoHeader}}
	}
	a.tokenURL = w.TokenEndpoint
	a.introspect = w.IntrospectionEndpoint
	a.endSession = endSession
	a.jwksURL = w.JWKSURI
	a.oauth = &oauth2.Config{
		ClientID:     a.clientID,
		ClientSecret: a.clientSecret,
		Endpoint:     oauth2.Endpoint{AuthURL: authURL, TokenURL: w.TokenEndpoint, AuthStyle: oauth2.AuthStyleInParams},
		RedirectURL:  a.redirectURI(),
		Scopes:       a.scopes,
	}
	keys := &keySet{secret: []byte(a.clientSecret)}
	if w.JWKSURI != "" {
		keys.remote = oidc.NewRemoteKeySet(oidc.ClientContext(context.Background(), base), w.JWKSURI)
	}
	a.verifier = oidc.NewVerifier(issuer, keys, &oidc.Config{
		ClientID:             a.clientID,
		SupportedSigningAlgs: []string{"HS256", oidc.RS256, oidc.ES256},
		Now:                  a.p.now,
	})
	return nil
}

// redirectURI is exactly what the core registers for the provider: Python's
// urljoin(external_host, "outpost.goauthentik.io/callback") plus the
// callback marker. RFC 3986 resolution gives the same result, including
// for an external host with a path (authentik's own outpost path-joins
// there and gets "Redirect URI Error", #26270).
func (a *application) redirectURI() string {
	u := a.external.ResolveReference(&url.URL{Path: "outpost.goauthentik.io/callback"})
	u.RawQuery = callbackParam + "=true"
	u.Fragment = ""
	return u.String()
}

func rehost(raw string, b *url.URL) string {
	u, err := url.Parse(raw)
	if err != nil || raw == "" {
		return raw
	}
	u.Scheme, u.Host = b.Scheme, b.Host
	return u.String()
}

type hostRewriter struct {
	rt          http.RoundTripper
	host, proto string
}

func (h hostRewriter) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Host = h.host
	r.Header.Set("X-Forwarded-Proto", h.proto)
	return h.rt.RoundTrip(r)
}

// keySet verifies HS256 tokens with the client secret (proxy providers have
// no signing key, so authentik signs with the secret) and anything else
// with the provider's JWKS.
type keySet struct {
	secret []byte
	remote *oidc.RemoteKeySet
}

func (k *keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return nil, errors.New("malformed token")
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return nil, errors.New("malformed token header")
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(hb, &h); err != nil {
		return nil, errors.New("malformed token header")
	}
	if h.Alg != "HS256" {
		if k.remote == nil {
			return nil, fmt.Errorf("token signed with %s and no JWKS configured", h.Alg)
		}
		return k.remote.VerifySignature(ctx, jwt)
	}
	if len(k.secret) == 0 {
		return nil, errors.New("HS256 token and no client secret")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, errors.New("malformed token signature")
	}
	m := hmac.New(sha256.New, k.secret)
	m.Write([]byte(parts[0] + "." + parts[1]))
	if !hmac.Equal(sig, m.Sum(nil)) {
		return nil, errors.New("bad token signature")
	}
	return base64.RawURLEncoding.DecodeString(parts[1])
}

// domainSuffix is the cookie domain without its leading dot.
func (a *application) domainSuffix() string { return strings.TrimPrefix(a.cookieDomain, ".") }

// ServeHTTP serves one request routed to this application.
func (a *application) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var q url.Values // nil, which reads as empty, when there is no query
	if r.URL.RawQuery != "" {
		q = r.URL.Query()
	}
	path := r.URL.Path
	switch {
	case strings.EqualFold(q.Get(callbackParam), "true") || path == pathCallback:
		a.handleCallback(w, r, q)
	case strings.EqualFold(q.Get(logoutParam), "true") || path == pathSignOut:
		a.handleSignOut(w, r)
	case path == pathStart:
		a.handleStart(w, r)
	case a.mode == modeProxy:
		a.handleProxy(w, r)
	case path == pathNginx:
		a.handleNginx(w, r)
	case path == pathTraefik || path == pathCaddy:
		a.handleTraefik(w, r)
	case path == pathEnvoy || strings.HasPrefix(path, pathEnvoy+"/"):
		a.handleEnvoy(w, r)
	default:
		a.errorPage(w, r, http.StatusNotFound, "Not found",
			"This address is not served here. Forward-auth providers answer only the outpost.goauthentik.io endpoints.")
	}
}
