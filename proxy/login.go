package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/akoutpost/akoutpost/proxy/session"
)

// handleStart begins a login: /outpost.goauthentik.io/start?rd=URL.
func (a *application) handleStart(w http.ResponseWriter, r *http.Request) {
	rd := r.URL.Query().Get("rd")
	target, ok := a.checkRedirect(rd)
	if !ok {
		if rd != "" {
			a.p.logger().Warn("refused redirect target", "provider", a.name, "rd", truncate(rd, 200))
		}
		target = a.external.String()
	}
	a.redirectToLogin(w, r, target)
}

// redirectToLogin answers 302 to the core's authorize endpoint, with a new
// login state bound to target (already validated) and to this browser by a
// state cookie of its own, so logins in parallel tabs do not clobber each
// other.
func (a *application) redirectToLogin(w http.ResponseWriter, r *http.Request, target string) {
	nonce := randomID()
	verifier := oauth2.GenerateVerifier()
	state, err := a.stateCodec.Encode("state", loginState{Nonce: nonce, Redirect: target})
	if err != nil {
		// Only a very long target can fail to encode; land on the
		// application instead.
		state, err = a.stateCodec.Encode("state", loginState{Nonce: nonce, Redirect: a.external.String()})
	}
	if err != nil {
		a.serverError(w, r, "encoding login state", err)
		return
	}
	name := a.stateCookieName(nonce)
	pending, err := a.stateCodec.Encode(name, pendingLogin{Nonce: nonce, Verifier: verifier})
	if err != nil {
		a.serverError(w, r, "encoding login cookie", err)
		return
	}
	a.expireExcessStates(w, r)
	http.SetCookie(w, a.cookie(name, pending, stateLifetime))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, a.oauth.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)), http.StatusFound)
}

// handleCallback completes a login. q is the callback's query: the
// request's own, or the forwarded URL's when the callback arrives inside a
// forward-auth check (Traefik, Caddy, Envoy).
func (a *application) handleCallback(w http.ResponseWriter, r *http.Request, q url.Values) {
	var st loginState
	if err := a.stateCodec.Decode("state", q.Get("state"), &st); err != nil || st.Nonce == "" {
		a.p.logger().Warn("login callback with an invalid or expired state", "provider", a.name)
		a.loginError(w, r, http.StatusBadRequest, "This login link is invalid or has expired.", "")
		return
	}
	target, ok := a.checkRedirect(st.Redirect)
	if !ok {
		target = a.external.String()
	}
	name := a.stateCookieName(st.Nonce)
	var pending pendingLogin
	ck, err := r.Cookie(name)
	if err == nil {
		err = a.stateCodec.Decode(name, ck.Value, &pending)
	}
	if err != nil || pending.Nonce != st.Nonce {
		a.p.logger().Warn("login callback without its state cookie (other browser, cookies blocked, or expired)", "provider", a.name)
		a.loginError(w, r, http.StatusBadRequest,
			"This login was started in another browser or has expired.", target)
		return
	}
	a.clearCookie(w, name)
	if e := q.Get("error"); e != "" {
		a.p.logger().Warn("core refused the login", "provider", a.name, "error", truncate(e, 100))
		a.loginError(w, r, http.StatusForbidden, "authentik did not authorize this login.", target)
		return
	}
	ctx := context.WithValue(r.Context(), oauth2.HTTPClient, a.core)
	tok, err := a.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(pending.Verifier))
	if err != nil {
		a.p.logger().Error("exchanging the authorization code", "provider", a.name, "error", redactOAuthError(err))
		a.loginError(w, r, http.StatusBadGateway, "The login could not be completed with authentik.", target)
		return
	}
	c, err := a.verifyTokens(ctx, tok)
	if err != nil {
		a.p.logger().Error("verifying tokens", "provider", a.name, "error", err)
		a.loginError(w, r, http.StatusBadGateway, "authentik's answer to the login could not be verified.", target)
		return
	}
	// A new session ID at every login: a session ID known before login
	// (fixation) is worth nothing after it.
	if _, oldID, _, _ := a.loadSession(r); oldID != "" {
		a.p.store.Delete(r.Context(), session.Filter{ID: oldID})
	}
	sc, err := a.saveSession(r.Context(), c)
	if err != nil {
		a.serverError(w, r, "saving session", err)
		return
	}
	http.SetCookie(w, sc)
	a.p.logger().Info("user logged in", "provider", a.name, "user", c.PreferredUsername)
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target, http.StatusFound)
}

// verifyTokens checks the token response and returns its claims. authentik
// issues JWT access tokens carrying the ID token's claims; the access token
// is preferred (it is what authentik's outpost forwards as X-authentik-jwt),
// the ID token is the fallback.
func (a *application) verifyTokens(ctx context.Context, tok *oauth2.Token) (*claims, error) {
	rawID, _ := tok.Extra("id_token").(string)
	var errs []error
	for _, raw := range []string{tok.AccessToken, rawID} {
		if raw == "" {
			continue
		}
		c, err := a.verifyJWT(ctx, raw)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		c.RawIDToken = rawID
		return c, nil
	}
	if len(errs) == 0 {
		return nil, errors.New("token response has neither a JWT access token nor an ID token")
	}
	return nil, errors.Join(errs...)
}

func (a *application) verifyJWT(ctx context.Context, raw string) (*claims, error) {
	t, err := a.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, err
	}
	var c claims
	if err := t.Claims(&c); err != nil {
		return nil, fmt.Errorf("decoding claims: %w", err)
	}
	if c.Sub == "" {
		return nil, errors.New("token has no subject")
	}
	c.RawToken = raw
	return &c, nil
}

// handleSignOut ends the user's sessions here and sends the browser to the
// provider's invalidation flow (authentik's end-session endpoint).
func (a *application) handleSignOut(w http.ResponseWriter, r *http.Request) {
	c, id, _, _ := a.loadSession(r)
	a.clearCookie(w, a.cookieName)
	target := a.endSession
	if c != nil {
		// Like authentik: every session of this user in this outpost's
		// store ends, whichever provider it belongs to. With a shared store
		// that is every replica.
		if _, err := a.p.store.Delete(r.Context(), session.Filter{Subject: c.Sub}); err != nil {
			a.p.logger().Error("ending sessions", "provider", a.name, "error", err)
		}
		a.p.store.Delete(r.Context(), session.Filter{ID: id})
		hint := c.RawIDToken
		if hint == "" {
			hint = c.RawToken
		}
		if target != "" && hint != "" {
			target = addQuery(target, "id_token_hint", hint)
		}
		a.p.logger().Info("user signed out", "provider", a.name, "user", c.PreferredUsername)
	}
	if target == "" {
		target = a.external.String()
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target, http.StatusFound)
}

func addQuery(raw, k, v string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	q := u.Query()
	q.Set(k, v)
	u.RawQuery = q.Encode()
	return u.String()
}

// redactOAuthError keeps the status and error code of a failed exchange
// and drops the body, which may echo what the client sent.
func redactOAuthError(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		code := re.ErrorCode
		if code == "" {
			code = "no error code"
		}
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		return fmt.Sprintf("token endpoint answered %d (%s)", status, truncate(code, 60))
	}
	var te *oidc.TokenExpiredError
	if errors.As(err, &te) {
		return "token expired"
	}
	return err.Error()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
