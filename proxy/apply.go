package proxy

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/akoutpost/akoutpost/outpost"
)

// mode is how an application is protected.
type mode string

// The modes, as the core names them in ProxyOutpostConfig.mode.
const (
	modeProxy         mode = "proxy"
	modeForwardSingle mode = "forward_single"
	modeForwardDomain mode = "forward_domain"
)

// wireConfig is ProxyOutpostConfig as /api/v3/outposts/proxy/ sends it.
type wireConfig struct {
	PK                         int      `json:"pk"`
	Name                       string   `json:"name"`
	InternalHost               string   `json:"internal_host"`
	ExternalHost               string   `json:"external_host"`
	InternalHostSSLValidation  *bool    `json:"internal_host_ssl_validation"`
	ClientID                   string   `json:"client_id"`
	ClientSecret               string   `json:"client_secret"`
	OIDC                       wireOIDC `json:"oidc_configuration"`
	CookieSecret               string   `json:"cookie_secret"`
	Certificate                *string  `json:"certificate"`
	SkipPathRegex              string   `json:"skip_path_regex"`
	BasicAuthEnabled           bool     `json:"basic_auth_enabled"`
	BasicAuthPasswordAttribute string   `json:"basic_auth_password_attribute"`
	BasicAuthUserAttribute     string   `json:"basic_auth_user_attribute"`
	Mode                       mode     `json:"mode"`
	CookieDomain               string   `json:"cookie_domain"`
	AccessTokenValidity        *float64 `json:"access_token_validity"`
	InterceptHeaderAuth        *bool    `json:"intercept_header_auth"`
	ScopesToRequest            []string `json:"scopes_to_request"`
	AssignedApplicationSlug    string   `json:"assigned_application_slug"`
	AssignedApplicationName    string   `json:"assigned_application_name"`
}

type wireOIDC struct {
	Issuer                string   `json:"issuer"`
	AuthorizationEndpoint string   `json:"authorization_endpoint"`
	TokenEndpoint         string   `json:"token_endpoint"`
	UserinfoEndpoint      string   `json:"userinfo_endpoint"`
	EndSessionEndpoint    string   `json:"end_session_endpoint"`
	IntrospectionEndpoint string   `json:"introspection_endpoint"`
	JWKSURI               string   `json:"jwks_uri"`
	SigningAlgs           []string `json:"id_token_signing_alg_values_supported"`
}

// routes is one configuration generation: what ServeHTTP reads. It is
// replaced whole by Apply, never mutated.
type routes struct {
	byHost  map[string]*application // external host[:port], lower case
	domains []*application          // forward_domain, longest cookie domain first
	all     []*application
	certs   map[string]*tls.Certificate // SNI host name -> certificate
	info    outpost.Info
}

// Apply implements [outpost.Provider]. Each provider object is decoded and
// checked on its own: one with a bad external host, regex or certificate is
// skipped with an error logged and returned, while the others are served.
func (p *Provider) Apply(ctx context.Context, u outpost.Update) error {
	log := p.logger()
	next := &routes{
		byHost: make(map[string]*application),
		certs:  make(map[string]*tls.Certificate),
		info:   u.Outpost,
	}
	prev := p.routes.Load()
	var refused []outpost.RefusedObject
	for i, raw := range u.Providers {
		var w wireConfig
		if err := json.Unmarshal(raw, &w); err != nil {
			err = fmt.Errorf("decoding: %w", err)
			name, _ := outpost.ObjectName(raw, i)
			log.Error("skipping provider", "provider", name, "error", err)
			refused = append(refused, outpost.RefusedObject{Name: name, Err: err})
			continue
		}
		app, err := p.buildApp(ctx, w, u)
		if err != nil {
			// A provider that worked before (a certificate fetch failing
			// while the core restarts, say) keeps its last good version
			// rather than going dark.
			if old := prev.byPK(w.PK); old != nil && w.PK != 0 {
				log.Error("keeping previous configuration of provider", "provider", w.Name, "error", err)
				err = fmt.Errorf("%w (its previous configuration is kept)", err)
				app = old
			} else {
				log.Error("skipping provider", "provider", w.Name, "error", err)
				app = nil
			}
			refused = append(refused, outpost.RefusedObject{Name: w.Name, Err: err})
			if app == nil {
				continue
			}
		}
		key := strings.ToLower(app.external.Host)
		if other, dup := next.byHost[key]; dup {
			// authentik lets the last one win silently (#6563); keep the
			// first and say so, so the choice does not depend on order of
			// arrival between refreshes.
			err := fmt.Errorf("external host %s already used by provider %q", key, other.name)
			log.Error("skipping provider", "provider", w.Name, "error", err)
			refused = append(refused, outpost.RefusedObject{Name: w.Name, Err: err})
			continue
		}
		next.byHost[key] = app
		next.all = append(next.all, app)
		if app.mode == modeForwardDomain && app.cookieDomain != "" {
			next.domains = append(next.domains, app)
		}
		if app.cert != nil {
			next.certs[strings.ToLower(app.external.Hostname())] = app.cert
		}
	}
	slices.SortStableFunc(next.domains, func(a, b *application) int {
		return cmp.Or(cmp.Compare(len(b.domainSuffix()), len(a.domainSuffix())), strings.Compare(a.name, b.name))
	})
	p.routes.Store(next)
	log.Info("applied proxy configuration", "applications", len(next.all), "refused", len(refused))
	if len(refused) > 0 {
		return &outpost.ApplyError{Applied: len(next.all), Refused: refused}
	}
	return nil
}

// byPK returns the application built from provider pk, if any.
func (rt *routes) byPK(pk int) *application {
	for _, a := range rt.all {
		if a.pk == pk {
			return a
		}
	}
	return nil
}

// buildApp converts one wire config into an application.
func (p *Provider) buildApp(ctx context.Context, w wireConfig, u outpost.Update) (*application, error) {
	ext, err := parseHTTPURL(w.ExternalHost)
	if err != nil {
		return nil, fmt.Errorf("external_host: %w", err)
	}
	mode := w.Mode
	if mode == "" {
		mode = modeProxy
	}
	a := &application{
		p:             p,
		pk:            w.PK,
		name:          w.Name,
		slug:          w.AssignedApplicationSlug,
		mode:          mode,
		external:      ext,
		clientID:      w.ClientID,
		clientSecret:  w.ClientSecret,
		cookieDomain:  strings.ToLower(strings.TrimSpace(w.CookieDomain)),
		basicAuth:     w.BasicAuthEnabled,
		basicUserAttr: w.BasicAuthUserAttribute,
		basicPassAttr: w.BasicAuthPasswordAttribute,
		interceptAuth: w.InterceptHeaderAuth == nil || *w.InterceptHeaderAuth,
		scopes:        w.ScopesToRequest,
		outpostName:   u.Outpost.Name,
		version:       u.Outpost.Version,
	}
	switch mode {
	case modeProxy:
		in, err := parseHTTPURL(w.InternalHost)
		if err != nil {
			return nil, fmt.Errorf("internal_host: %w", err)
		}
		a.internal = in
		a.insecureUpstream = w.InternalHostSSLValidation != nil && !*w.InternalHostSSLValidation
	case modeForwardSingle, modeForwardDomain:
	default:
		return nil, fmt.Errorf("unknown mode %q", mode)
	}
	if w.ClientID == "" {
		return nil, errors.New("no client_id")
	}
	a.validity = time.Hour
	if w.AccessTokenValidity != nil && *w.AccessTokenValidity > 0 {
		a.validity = time.Duration(*w.AccessTokenValidity * float64(time.Second))
	}
	for line := range strings.SplitSeq(w.SkipPathRegex, "\n") {
		line = strings.TrimRight(line, "\r")
		// authentik compiles an empty line to a regex matching everything,
		// which silently unprotects the application; an empty line here
		// means nothing.
		if strings.TrimSpace(line) == "" {
			continue
		}
		re, err := regexp.Compile(line)
		if err != nil {
			return nil, fmt.Errorf("skip_path_regex %q: %w", line, err)
		}
		a.skip = append(a.skip, re)
	}
	// Cookie name as authentik names it since 2025.8, so a switch between
	// outposts keeps browsers' cookies meaningful in name at least.
	sum := sha256.Sum256([]byte(w.ClientID))
	a.cookieName = "authentik_proxy_" + hex.EncodeToString(sum[:])[:8]
	a.secure = ext.Scheme == "https"
	secret := p.cfg.CookieSecret
	if secret == nil {
		if len(w.CookieSecret) < 16 {
			return nil, errors.New("cookie_secret missing or shorter than 16 characters")
		}
		secret = []byte(w.CookieSecret)
	}
	if err := a.initCodecs(secret); err != nil {
		return nil, err
	}
	if err := a.initOIDC(w.OIDC, u); err != nil {
		return nil, err
	}
	if mode == modeProxy {
		a.initUpstream()
	}
	if w.Certificate != nil && *w.Certificate != "" {
		cert, err := p.fetchCertificate(ctx, *w.Certificate)
		if err != nil {
			return nil, fmt.Errorf("certificate %s: %w", *w.Certificate, err)
		}
		a.cert = cert
	}
	return a, nil
}

// fetchCertificate gets a keypair through the outpost's certificate cache.
func (p *Provider) fetchCertificate(ctx context.Context, id string) (*tls.Certificate, error) {
	if p.deps.Certificates == nil {
		return nil, errors.New("the provider was built without the outpost's certificates")
	}
	return p.deps.Certificates.Get(ctx, id)
}

func parseHTTPURL(s string) (*url.URL, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("empty")
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%q is not an http or https URL", s)
	}
	if u.Host == "" || u.User != nil {
		return nil, fmt.Errorf("%q has no host or carries credentials", s)
	}
	u.Host = strings.ToLower(u.Host)
	return u, nil
}

// coreClient returns the HTTP client for the core's OAuth2 endpoints.
func (p *Provider) coreClient() *http.Client {
	if p.cfg.HTTPClient != nil {
		return p.cfg.HTTPClient
	}
	if p.deps.API != nil {
		if rt := p.deps.API.Transport(); rt != nil {
			return &http.Client{Transport: rt, Timeout: 30 * time.Second}
		}
	}
	return &http.Client{Timeout: 30 * time.Second}
}
