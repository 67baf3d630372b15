package proxy

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// authSource says how a request was authenticated.
type authSource int

const (
	authNone         authSource = iota // no credentials
	authSession                        // session cookie
	authHeader                         // the client's Authorization header
	authHeaderFailed                   // an Authorization header that was refused
	authStoreDown                      // a session cookie the store could not look up
)

// authenticate returns the request's user: from its session cookie, else,
// when the application intercepts header auth, from its Authorization
// header. The identity may be shared with other requests and must not be
// modified. A stale session cookie is cleared on w.
func (a *application) authenticate(w http.ResponseWriter, r *http.Request) (id *identity, via authSource) {
	id, stale, storeDown := a.session(r)
	if stale {
		a.clearCookie(w, a.cookieName)
	}
	if id != nil {
		return id, authSession
	}
	if storeDown {
		return nil, authStoreDown
	}
	authz := r.Header.Get("Authorization")
	if !a.interceptAuth || authz == "" {
		return nil, authNone
	}
	c, err := a.headerAuth(r.Context(), authz)
	if err != nil {
		a.p.logger().Info("header authentication failed", "provider", a.name, "reason", err)
		return nil, authHeaderFailed
	}
	return a.newIdentity(c), authHeader
}

type headerAuthEntry struct {
	c     *claims
	until time.Time
}

// headerAuthCache remembers successful header logins by a hash of the
// header, never the header itself.
type headerAuthCache struct {
	mu sync.Mutex
	m  map[string]headerAuthEntry
}

const headerAuthCacheMax = 10000

func (h *headerAuthCache) get(key string, now time.Time) *claims {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.m[key]
	if !ok {
		return nil
	}
	if !now.Before(e.until) {
		delete(h.m, key)
		return nil
	}
	return e.c
}

func (h *headerAuthCache) put(key string, c *claims, until time.Time, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = make(map[string]headerAuthEntry)
	}
	if len(h.m) >= headerAuthCacheMax {
		for k, e := range h.m {
			if !now.Before(e.until) {
				delete(h.m, k)
			}
		}
		if len(h.m) >= headerAuthCacheMax {
			clear(h.m)
		}
	}
	h.m[key] = headerAuthEntry{c: c, until: until}
}

// headerAuth logs a client in with its own Authorization header: a Bearer
// token is introspected at the core; Basic credentials are an app password
// exchanged with the client_credentials grant (or, with the user name
// "goauthentik.io/token", a token).
func (a *application) headerAuth(ctx context.Context, authz string) (*claims, error) {
	sum := sha256.Sum256([]byte(a.clientID + "\x00" + authz))
	key := hex.EncodeToString(sum[:])
	now := a.p.now()
	if c := a.p.headerCache.get(key, now); c != nil {
		return c, nil
	}
	scheme, cred, _ := strings.Cut(authz, " ")
	cred = strings.TrimSpace(cred)
	var c *claims
	var err error
	switch strings.ToLower(scheme) {
	case "bearer":
		c, err = a.introspectToken(ctx, cred)
	case "basic":
		raw, derr := base64.StdEncoding.DecodeString(cred)
		if derr != nil {
			return nil, errors.New("malformed Basic credentials")
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		if !ok {
			return nil, errors.New("malformed Basic credentials")
		}
		if user == "goauthentik.io/token" {
			c, err = a.introspectToken(ctx, pass)
		} else {
			c, err = a.clientCredentials(ctx, user, pass)
		}
	default:
		return nil, errors.New("unsupported Authorization scheme")
	}
	if err != nil {
		return nil, err
	}
	ttl := a.p.cfg.HeaderAuthCacheTTL
	if ttl == 0 {
		ttl = time.Minute
	}
	until := now.Add(ttl)
	if c.Exp > 0 {
		if e := time.Unix(c.Exp, 0); e.Before(until) {
			until = e
		}
	}
	a.p.headerCache.put(key, c, until, now)
	return c, nil
}

func (a *application) postForm(ctx context.Context, endpoint string, form url.Values, out any) error {
	if endpoint == "" {
		return errors.New("endpoint not configured")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := a.core.Do(req)
	if err != nil {
		return fmt.Errorf("calling the core: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("reading the core's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("core answered %d", resp.StatusCode)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decoding the core's answer: %w", err)
	}
	return nil
}

func (a *application) introspectToken(ctx context.Context, token string) (*claims, error) {
	if token == "" {
		return nil, errors.New("empty token")
	}
	var raw json.RawMessage
	err := a.postForm(ctx, a.introspect, url.Values{
		"client_id": {a.clientID}, "client_secret": {a.clientSecret}, "token": {token},
	}, &raw)
	if err != nil {
		return nil, fmt.Errorf("introspection: %w", err)
	}
	var status struct {
		Active bool `json:"active"`
	}
	var c claims
	if json.Unmarshal(raw, &status) != nil || !status.Active {
		return nil, errors.New("introspection: token not active")
	}
	if err := json.Unmarshal(raw, &c); err != nil || c.Sub == "" {
		return nil, errors.New("introspection: answer without a subject")
	}
	c.RawToken = token
	return &c, nil
}

func (a *application) clientCredentials(ctx context.Context, user, pass string) (*claims, error) {
	var resp struct {
		IDToken string `json:"id_token"`
	}
	err := a.postForm(ctx, a.tokenURL, url.Values{
		"grant_type": {"client_credentials"}, "client_id": {a.clientID},
		"username": {user}, "password": {pass}, "scope": {strings.Join(a.scopes, " ")},
	}, &resp)
	if err != nil {
		return nil, fmt.Errorf("client credentials: %w", err)
	}
	c, err := a.verifyJWT(ctx, resp.IDToken)
	if err != nil {
		return nil, fmt.Errorf("client credentials: %w", err)
	}
	return c, nil
}
