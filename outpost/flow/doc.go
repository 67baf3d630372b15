// Package flow runs authentik flows on behalf of a user, the way a browser
// would, through the core's flow executor API (/api/v3/flows/executor/SLUG/).
//
// An [Executor] answers the identification, password and
// authenticator-validation challenges from the credentials it is given and
// reports a typed [Result]: the flow redirected (success), the core rejected
// the credentials or denied access, or the core could not answer at all. A
// successful run returns a [Session], an HTTP client holding the user's
// session cookie, for follow-up calls made as that user such as
// /core/users/me/ or an access check. A run may pass a client certificate
// the outpost received (EAP-TLS) to the flow's Mutual TLS stage, which
// checks it and names the user, as authentik's outposts do.
//
// Every run has its own cookie jar, so concurrent runs never share a
// session. Callers such as the LDAP provider must treat an error as
// "unknown", never as success.
package flow
