// Package outposttest is an authentik-compatible test core, in the spirit
// of net/http/httptest: [NewServer] loads an authentik blueprint and serves
// the part of authentik's API that outposts use, on a loopback port, so
// the same outpost code runs against it and against a real authentik.
//
// It serves, with the paths and JSON of authentik's OpenAPI schema:
//
//   - /api/v3/outposts/instances/, /api/v3/outposts/proxy/,
//     /api/v3/outposts/ldap/, /api/v3/outposts/radius/ and
//     /api/v3/root/config/;
//   - /api/v3/crypto/certificatekeypairs/{id}/ with view_certificate/ and
//     view_private_key/ (key pairs without PEM get a generated
//     self-signed certificate);
//   - /api/v3/core/users/, /api/v3/core/groups/ (with the filters the LDAP
//     outpost uses), /api/v3/core/users/me/,
//     /api/v3/outposts/ldap/{id}/check_access/ and
//     /api/v3/outposts/radius/{id}/check_access/ (whose attributes are
//     those set with [Server.SetRadiusAttributes], as property mappings
//     are Python the test core does not run);
//   - the flow executor /api/v3/flows/executor/{slug}/ with the
//     identification, password, authenticator-validation (TOTP and
//     static tokens), user-login and Mutual TLS stages;
//   - OAuth2/OIDC for proxy providers under /application/o/ (discovery,
//     authorize with PKCE, token, userinfo, introspection, JWKS, end
//     session) and a plain HTML login page at /if/flow/{slug}/;
//   - the outpost websocket /ws/outpost/{pk}/, which records hellos and
//     acknowledges every message as authentik does;
//   - for a controller's API token: /api/v3/outposts/service_connections/docker/
//     and /kubernetes/, and /api/v3/core/tokens/{identifier}/view_key/
//     (the key to its owner, a superuser or a holder of
//     authentik_core.view_token_key; 404 to anyone else);
//   - authentik's REST writes from a user allowed to make them (a
//     superuser): PATCH, PUT and DELETE of /api/v3/outposts/instances/{uuid}/
//     and of the service connections, GET and PATCH of
//     /api/v3/providers/proxy/{id}/ and PATCH of /api/v3/providers/ldap/{id}/,
//     each sending the affected outposts a trigger-update as a Go edit does.
//
// Beyond a real core it lets a test trigger updates ([Server.TriggerUpdate],
// [Server.Send]), change things live ([Server.UpdateProvider],
// [Server.UpdateUser], [Server.RotateCertificate], ...), inject faults
// ([Server.Fault], [Server.DropWebsockets], [Server.Stop] and
// [Server.Start]) and read what it saw ([Server.Requests],
// [Server.Connections], [Server.Hellos]).
//
// # Blueprints
//
// The subset of authentik's blueprint format it reads: version 1,
// metadata, and entries with model, identifiers, attrs, id, state and
// permissions; the tags !KeyOf, !Find and !Env; the models
// authentik_core.user, authentik_core.group, authentik_rbac.role,
// authentik_core.application, authentik_providers_proxy.proxyprovider,
// authentik_providers_ldap.ldapprovider,
// authentik_providers_radius.radiusprovider (client_networks,
// shared_secret, mfa_support, certificate, and the flows; authentik's
// defaults: every address, a generated secret, MFA on),
// authentik_outposts.outpost (of type proxy, ldap or radius, with an
// optional service_connection),
// authentik_outposts.dockerserviceconnection (name, local, url,
// tls_verification, tls_authentication),
// authentik_outposts.kubernetesserviceconnection (name, local, kubeconfig,
// verify_ssl), authentik_core.token (intent api or app_password,
// identifier, user, key; the key is derived when absent, and `akoutpost
// testcore` prints those of API tokens),
// authentik_crypto.certificatekeypair,
// authentik_stages_authenticator_totp.totpdevice,
// authentik_stages_authenticator_static.staticdevice, to restrict an
// application to some users or groups, authentik_policies.policybinding
// with a user or group (not a policy), and, for flows of one's own,
// authentik_flows.flow (name, slug, title, designation),
// authentik_stages_mtls.mutualtlsstage (mode, certificate_authorities,
// cert_attribute, user_attribute) and authentik_flows.flowstagebinding
// (target, stage, order) of an authentication flow. An unknown model, tag
// or attribute is an error naming the entry. [NewCA] makes the
// certificate authority and client certificates of Mutual TLS tests.
// Built in, as in a fresh authentik, are the
// flows default-authentication-flow (with its stages
// default-authentication-identification, -password, -mfa-validation and
// -login at the orders 10, 20, 30 and 100, which !Find names under their
// models so other flows can bind them too),
// default-provider-authorization-implicit-consent,
// default-provider-authorization-explicit-consent,
// default-invalidation-flow and default-provider-invalidation-flow, and
// every outpost's service account.
//
// Tokens, client IDs and secrets, UUIDs and primary keys are derived from
// the blueprint (and [Config.Secret]), so a core restarted with the same
// blueprint is the same core to the outposts that knew it. Generated
// certificates are the exception: they are new in every process.
//
// Tokens carry authentik's permissions: an outpost's token reads its own
// outpost, its providers and their certificates, and, for LDAP outposts,
// users and groups; an unknown token gets 403 everywhere. A user's session
// (from the flow executor or the login page) reads the user's own data and
// the LDAP access check.
//
// # How close the flows are to authentik's
//
// The flow executor refuses what authentik's default authentication flow
// refuses: identification matches username or email ignoring case (the
// stage's case_insensitive_matching, default true), an unknown user is
// pretended to exist until the password stage, an inactive user's password
// is wrong, the fifth wrong password denies the flow, a user with a
// confirmed TOTP or static device must give a code (a static device whose
// tokens are used up still counts, so no code passes), a TOTP code is
// taken within the device's tolerance (one step either side by default,
// after t0 and drift) and never twice, and the user-login stage refuses a
// user deactivated while the flow ran. The Mutual TLS stage takes the
// certificate an outpost passes in X-Authentik-Outpost-Certificate when
// the outpost's service account ("Outpost NAME Service-Account") holds
// pass_outpost_certificate on the stage, checks that it chains to one of
// the stage's certificate authorities, is valid now and may authenticate
// clients, and makes the user its common name, subject or email names
// (exactly) the flow's user; without a valid certificate a required
// stage denies the flow and an optional one lets it go on. The session
// of a deactivated user no longer authenticates them, as with Django's
// session authentication.
// The token endpoint's client_credentials and password grants take a
// username and one of that user's app passwords, never the user's own
// password. It is deliberately simpler in these ways:
//
//   - failed codes are not throttled: django-otp's ThrottlingMixin makes
//     authentik refuse even a right code for 2^(n-1) seconds after n wrong
//     ones, which would make tests depend on the clock;
//   - a TOTP device's drift is not adjusted when a code of a neighbouring
//     step is taken (django-otp's OTP_TOTP_SYNC);
//   - there are no policies bound to flows or stages, no deny stage, no
//     captcha, WebAuthn, Duo, SMS or email devices, no reputation and no
//     lockout after failed attempts;
//   - the Mutual TLS stage reads no reverse proxy's header and has no
//     brand to fall back on for certificate authorities, and runs in
//     authentication flows only (no enrollment);
//   - the login page at /if/flow/{slug}/ asks a username and password
//     whatever stages the flow binds.
//
// # The demo blueprint
//
// [DemoBlueprint], which `akoutpost demo` runs, has these users:
//
//	username   password             notes
//	alice      alice-password       groups demo-users and demo-admins; may search the whole LDAP directory
//	bob        bob-password         group demo-users; may not use the LDAP application; app
//	                                password bob-app-password (HTTP basic auth to the proxy)
//	carol      carol-password       TOTP (secret 3132333435363738393031323334353637383930, RFC 6238's
//	                                test key) and static tokens recovery1, recovery2; LDAP bind
//	                                password "carol-password;123456" with the current code
//	ldap-bind  ldap-bind-password   service account that may search the whole LDAP directory
//
// and the outposts demo-proxy (applications whoami, proxy mode, at
// http://whoami.localhost:9000 and forward, forward_single, at
// http://forward.localhost:9000), demo-ldap (base DN
// dc=ldap,dc=goauthentik,dc=io, bind DN cn=alice,ou=users,dc=ldap,dc=goauthentik,dc=io)
// and demo-radius (shared secret demo-radius-secret for clients on
// loopback).
package outposttest
