// Package session stores the proxy provider's login sessions behind one small
// interface, [Store], with these implementations: [Memory] (embedded
// outposts and tests), [File] (the standalone default, so sessions survive a
// restart), and [Redis], [Postgres] and [AuthentikPostgres] (several
// replicas behind a load balancer share sessions, and a session end received
// by any replica reaches all of them; AuthentikPostgres uses the table
// authentik already has for its embedded outpost).
//
// A store never sees cookies or claims in clear structure: it keeps an opaque
// payload per session plus the two values sessions are ended by, the user's
// subject and the authentik session ID hash ("sid"). Both are indexed, so
// ending a user's sessions costs the number of that user's sessions, not the
// number of sessions in the store.
//
// Package sessiontest holds the conformance suite every implementation
// passes.
package session
