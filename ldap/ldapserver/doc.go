// Package ldapserver is an LDAPv3 server protocol layer (RFC 4511) built on
// github.com/go-asn1-ber/asn1-ber, with filters, controls and result codes
// in the shapes of github.com/go-ldap/ldap/v3.
//
// A [Server] serves any [net.Listener], so a host can wrap the listener in
// TLS (LDAPS) or the PROXY protocol, and tests can listen on 127.0.0.1:0.
// The layer owns the wire: it reads and bounds messages, runs several
// operations of one connection concurrently, echoes message IDs, cancels
// abandoned operations and suppresses their responses, answers the
// StartTLS and WhoAmI extended operations, refuses SASL binds and every
// write operation, and turns a handler panic into an operationsError
// result. A [Handler] supplies the directory: Bind, Search and Compare,
// plus optional capabilities found by type assertion ([WhoAmIHandler],
// [ExtendedHandler], [ConnObserver]).
//
// Search results are streamed through a [SearchWriter] as the handler
// produces them, so a large result is never held in memory; the writer
// enforces the client's size limit and stops when the operation is
// abandoned or the connection ends.
//
// Hostile input ends at most the connection that sent it. A search over a
// limit, with a filter nested deeper than [Server.MaxFilterDepth], with
// too many BER elements, or longer than [Server.MaxMessageSize] (which is
// read past without being kept), is answered adminLimitExceeded and the
// connection stays, since its framing is intact. A message that does not
// parse as an LDAPMessage, or any other request over a limit, is answered
// with a notice of disconnection (RFC 4511 4.4.1) and the connection is
// closed; the layer then half-closes it and reads what the client still
// sends for a moment, so that the notice is not lost to a reset. Other
// connections keep being served. The layer never changes asn1-ber's
// package-level limits: it checks a message's structure itself before
// decoding it.
package ldapserver
