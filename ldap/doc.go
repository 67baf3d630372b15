// Package ldap is authentik's LDAP provider as a library: an
// [outpost.Provider] that serves the users and groups of authentik over
// LDAPv3 and authenticates binds by running the provider's authorization
// flow.
//
// One [Provider] serves every LDAP provider object of its outpost on the
// same listeners, routing binds and searches by base DN. The directory it
// serves matches authentik's own outpost entry for entry: users under
// ou=users, groups under ou=groups, one virtual group per user under
// ou=virtual-groups, the root DSE and cn=subschema.
//
// Where authentik's outpost is wrong or unsafe, this package is right, and
// says so here:
//
//   - A bind that cannot be decided (the core is down, a check fails, a
//     handler panics) is answered busy (51), unavailable (52) or other (80),
//     never success.
//   - Cached bind mode remembers only successful binds, keyed by the DN and
//     a salted hash of the password (never the password), for at most the
//     session's lifetime and [Config.CachedBindTTL]; it forgets them on a
//     session-end message and when a refresh shows the user changed.
//   - Bind DNs must be exactly cn=USER,ou=users,BASE (case-insensitive,
//     RFC 4514 escaping, unescaped spaces around separators ignored); DNs
//     outside ou=users are refused with 49, DNs that cannot name a user
//     (unparsable, empty or hex-form cn) with 34.
//   - Names are RFC 4514-escaped in DNs.
//   - The certificate is chosen by SNI against each provider's
//     tls_server_name (exact, then wildcard).
//   - Filters are evaluated in full (RFC 4515, including >=, <= and ~=,
//     with three-valued logic), so OR filters over objectClass work;
//     extensible match honours :dn: and the matching rule named.
//   - Attributes are found by any name or OID their type has in the
//     published subschema (commonName, 2.5.4.3 and cn alike) in filters,
//     attribute lists and compare, and returned under the server's name.
//   - No attribute is sent without values, nor a non-DN attribute whose
//     only value is empty (RFC 4511 4.1.7): a user without email has no
//     mail, one in no group no memberOf.
//   - Filters over the depth or size limits are answered adminLimitExceeded
//     and the connection stays.
//   - Search errors are answered as LDAP results; the connection stays up.
//   - sizeLimit is answered with sizeLimitExceeded, and the paged-results
//     control (RFC 2696) is implemented with working cookies.
//   - createTimestamp, modifyTimestamp and pwdChangedTime are operational
//     attributes: returned for "+" or by name, not for "*".
//   - The root DSE and cn=subschema are public: anonymous clients read
//     namingContexts, and only implemented controls and extensions
//     (paged results, StartTLS, WhoAmI) are advertised.
//   - Groups carry memberUid (RFC 2307) besides member, ak-superuser is
//     TRUE/FALSE on groups as on users, a numeric uidNumber or gidNumber
//     attribute overrides the computed one like a string does, and nested
//     attribute objects become "parent-child" attributes instead of a Go
//     map dump.
//   - A DN with an empty password is an unauthenticated bind, refused with
//     53 without asking the core; a failed bind leaves the connection
//     anonymous (RFC 4511 4.2.1). An empty DN with an empty password is an
//     anonymous bind (RFC 4513 5.1.1) and succeeds; an anonymous
//     connection reads the root DSE and cn=subschema, finds no entries
//     anywhere else, and gets 50 for compare.
//   - Failed binds are delayed and then refused per bind DN and client
//     address ([BindThrottle]); a refusal looks like a wrong password
//     (49) to the client, and the pair that guessed is the only one
//     locked out.
//   - A failed directory refresh keeps serving the last good directory
//     instead of an empty or partial one.
//
// Entries otherwise keep authentik's shape, including its quirks that
// clients may rely on: the containers name their cn commonName, and custom
// attributes override built-in ones of the same type.
//
// In direct search mode, equality filters on cn, mail, member and memberOf
// are passed to the core's API, whose matching is exact (case-sensitive),
// as with authentik's outpost; cached mode matches case-insensitively.
package ldap
