// Package outpost connects an authentik outpost to its core and keeps its
// provider's configuration current.
//
// An [Outpost] finds the outpost its token belongs to
// (/api/v3/outposts/instances/), decodes the outpost's settings, lists the
// provider objects of its type (/api/v3/outposts/<type>/), builds the
// [Provider] for that type with the [Factory] registered for it, and hands
// it the objects at every refresh. It then keeps a websocket control
// channel open to the core, answering with hellos every 10 s, refreshing
// when the core triggers an update, after every reconnect and on a timer,
// and passing other messages to providers that implement [MessageHandler].
// When the core is unreachable the provider keeps serving its last good
// configuration while the outpost reconnects with jittered backoff.
//
// The package also holds what a factory receives in [Deps]: the API
// [Client] (retries, pagination, authentik's User-Agent, tokens kept out of
// logs and errors), [Certificates] (fetched by fingerprint) and the decoded
// [Settings].
//
// Nothing here reads the environment, installs signal handlers or touches
// global state: the command maps AUTHENTIK_* variables to [Config] and calls
// [Outpost.Refresh] on SIGUSR1, and a host embedding an outpost passes its
// own logger and Prometheus registry. The outpost never imports a provider
// package; proxy, ldap and third-party providers are peers behind the
// [Provider] interface.
package outpost
