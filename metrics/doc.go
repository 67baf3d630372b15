// Package metrics holds authentik's outpost metrics and the HTTP endpoint
// that exposes them.
//
// Nothing here is global: every constructor takes the
// [prometheus.Registerer] the caller chose, and [Handler] serves the
// [prometheus.Gatherer] the caller passes in. A host that embeds outposts
// passes its own registry and gets the outposts' families on its own
// /metrics; a standalone outpost passes a private registry and serves it on
// :9300 with [Serve].
//
// Metric names and labels are authentik's, so existing dashboards keep
// working. Constructors tolerate an identical collector already registered
// on the same registry (they reuse it), which is how two outposts in one
// process share one registry: each sets only its own label values.
//
// Label values must stay bounded. Outpost names, types and instance UUIDs are
// bounded by configuration; request hosts are not, because clients choose
// them. Callers therefore pass a host label only when it is one of the
// configured application hosts and fold every other host into [OtherHost].
// Go runtime and process collectors are the command's business, not this
// package's.
package metrics
