// Package radius is the RADIUS provider: a RADIUS server (RFC 2865) for
// outposts of type "radius", whose Access-Requests are authenticated by
// authentik flows, as authentik's own RADIUS outpost does.
//
// A request is answered only when it comes from one of a provider's
// client_networks and carries a Message-Authenticator (RFC 3579 3.2)
// made with that provider's shared secret; anything else is dropped
// unanswered and counted. Among providers whose networks hold the client,
// the most specific network goes first and the secret that verifies the
// Message-Authenticator picks the provider. Every reply carries a
// Message-Authenticator as its first attribute, the defence against
// BlastRADIUS (CVE-2024-3596).
//
// PAP is served: User-Name and User-Password run the provider's
// authentication flow through [flow.Executor] (with mfa_support, a
// trailing ";CODE" is the authenticator code), then the core's access
// check for the application decides, and the attributes the core's
// property mappings return go into the Access-Accept. A retransmission
// (same source, identifier and content) is answered with the cached reply
// and never runs the flow twice.
//
// With a certificate on the provider, EAP is served too: PEAP (version 0)
// with GTC inside and EAP-TTLS with PAP inside, whose inner password runs
// the same flow, and EAP-TLS, whose client certificate goes to the flow
// for its Mutual TLS stage to judge and map to a user, as authentik's
// outpost passes it; the Access-Accept carries the MS-MPPE keys derived
// from the TLS session. MS-CHAPv2 and CHAP are refused with
// Access-Reject; see docs/radius.md.
//
// Metrics use authentik's names: authentik_outpost_radius_request_duration_seconds
// and authentik_outpost_radius_requests_rejected_total.
package radius
