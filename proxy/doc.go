// Package proxy implements authentik's Proxy outpost as an
// [outpost.Provider]: a reverse proxy ("proxy" mode) and a forward-auth
// service for nginx, Traefik, Caddy and Envoy ("forward_single" and
// "forward_domain" modes), with OAuth2/OIDC login against the core,
// sessions, and authentik's identity headers.
//
// A [Provider] is also an [net/http.Handler]: a host program can mount it in
// its own mux, while a standalone outpost gives it listeners through
// [Config] and lets [Provider.Serve] serve them (HTTPS picks each
// application's certificate by SNI, with a generated self-signed fallback).
//
// Requests are routed by host (X-Forwarded-Host, else Host) to the provider
// whose external host matches exactly, else to the forward_domain provider
// with the longest cookie domain the host falls under. Everything under
// /outpost.goauthentik.io/ (start, callback, sign_out, auth/nginx,
// auth/traefik, auth/caddy, auth/envoy, ping) answers as authentik's own
// outpost does, with these deliberate differences:
//
//   - Sessions live in a [session.Store]: in memory, in files (they survive a
//     restart), or in Redis or PostgreSQL (replicas share them, and a session
//     end reaches all of them). Each provider keeps its own cookie name,
//     domain, lifetime and keys.
//   - Every login has its own state cookie, so parallel logins in several
//     tabs, restarts and replicas do not produce "invalid state" errors. The
//     login uses PKCE. The session ID is rotated at login.
//   - Requests from scripts (Accept: application/json, X-Requested-With, or
//     a non-navigation Sec-Fetch-Mode) get 401 instead of a login redirect.
//   - Redirect targets (rd, the forwarded URL, the state) are accepted only
//     under the provider's external host or cookie domain, with a dot
//     boundary for domains.
//   - Proxied paths are never cleaned or redirected: %2F and // reach the
//     upstream unchanged, and the query string is kept in the login redirect.
//   - Client-sent X-authentik-* headers, and every header with an underscore,
//     are removed from every proxied request, unauthenticated ones included.
//   - intercept_header_auth governs every mode: when off, the Authorization
//     header is never interpreted; when on, a failed header login is a 401.
//   - A token exchange that fails shows an error page with a "try again" link
//     instead of silently looping through the login.
//   - The host of a trusted peer's X-Original-URL finds the application when
//     X-Forwarded-Host is absent, so external hosts with a port work behind
//     nginx's snippet, whose Host ($host) loses the port.
package proxy
