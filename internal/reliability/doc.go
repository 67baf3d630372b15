// Package reliability holds akoutpost's cross-cutting reliability tests:
// faults injected into a running test core while a proxy outpost and an
// LDAP outpost serve, a search of every log line for secrets, and a soak
// that mixes load with configuration updates and websocket drops. It has
// no production code; its findings are summarised in docs/RELIABILITY.md.
package reliability
