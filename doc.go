// Package akoutpost is an embeddable implementation of authentik outposts.
//
// An outpost is the part of authentik that runs next to the services it
// protects. It connects to the authentik server (the core) with a token,
// fetches its configuration over the API, keeps a websocket open for update
// instructions, and serves one kind of provider to the outside world. This
// module holds the pieces as small packages, so they can run as the
// standalone command, inside another Go server, or as parts of a custom
// gateway:
//
//   - [github.com/akoutpost/akoutpost/outpost] connects to the core: the API
//     client, the control channel, outpost settings, certificates and the
//     [outpost.Provider] interface every provider implements, built by the
//     [outpost.Factory] registered for the outpost's type.
//   - [github.com/akoutpost/akoutpost/proxy] is the Proxy provider: a reverse
//     proxy and forward-auth endpoint for nginx, Traefik, Caddy and Envoy
//     that logs users in with OpenID Connect and passes identity headers on.
//   - [github.com/akoutpost/akoutpost/ldap] is the LDAP provider: binds run
//     authentik flows, searches are answered from authentik's users and
//     groups. [github.com/akoutpost/akoutpost/ldap/ldapserver] is its LDAPv3
//     protocol layer, usable on its own.
//   - [github.com/akoutpost/akoutpost/radius] is the RADIUS provider: PAP
//     Access-Requests from network gear run authentik flows, with
//     Message-Authenticator required and sent; PEAP-GTC, EAP-TTLS/PAP and
//     EAP-TLS carry the credentials or the client certificate to the flow.
//   - [github.com/akoutpost/akoutpost/outpost/flow] runs authentik flows
//     (identification, password, MFA) for binds and header authentication.
//   - [github.com/akoutpost/akoutpost/metrics] holds authentik's outpost
//     metrics and the /metrics and health endpoint, on a registry the caller
//     passes in.
//   - [github.com/akoutpost/akoutpost/outpost/outposttest] is a test core in
//     the spirit of net/http/httptest: it loads an authentik blueprint and
//     speaks the API, websocket, OAuth2 and flow endpoints outposts use.
//
// A standalone outpost is cmd/akoutpost, configured by AUTHENTIK_HOST and
// AUTHENTIK_TOKEN like authentik's own. An embedded outpost is the same
// [outpost.Outpost] given the host's Prometheus registry, with the proxy
// provider it built ([outpost.Outpost.Provider]) mounted in the host's mux;
// see docs/embedding.md and the programs under examples/.
package akoutpost
