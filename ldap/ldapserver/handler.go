package ldapserver

import (
	"context"
	"errors"
	"fmt"

	ber "github.com/go-asn1-ber/asn1-ber"
	ldap "github.com/go-ldap/ldap/v3"
)

// Handler answers the operations a directory must implement. Each method
// runs in its own goroutine; ctx ends when the client abandons the
// operation, its time limit passes, the connection closes, or a shutdown
// stops waiting for it (Server.DrainTimeout), and a handler must return
// soon after. Binds never run concurrently with another operation of the
// same connection (RFC 4511 4.2.1).
//
// A panic in a method is recovered, logged and answered with
// operationsError: never with success.
type Handler interface {
	// Bind authenticates a simple bind. On success (Code 0) the connection's
	// bound DN becomes req.DN; on any other code the connection is
	// anonymous again (RFC 4511 4.2.1). SASL binds, binds of a version other
	// than 3 and unauthenticated binds (a DN with an empty password, RFC
	// 4513 5.1.2) are answered by the layer without calling Bind.
	Bind(ctx context.Context, c *Conn, req *BindRequest) Result
	// Search streams matching entries through w and returns the final
	// result. If w reported ErrSizeLimitExceeded and the handler returns
	// success, the client gets sizeLimitExceeded.
	Search(ctx context.Context, c *Conn, req *SearchRequest, w SearchWriter) Result
	// Compare answers compareTrue (6), compareFalse (5) or an error code.
	Compare(ctx context.Context, c *Conn, req *CompareRequest) Result
}

// WhoAmIHandler is implemented by a Handler that answers the WhoAmI
// extended operation (RFC 4532) itself. Without it the layer answers
// "dn:<bound DN>", or the empty identity for an anonymous connection.
type WhoAmIHandler interface {
	WhoAmI(ctx context.Context, c *Conn) (authzID string, res Result)
}

// ExtendedHandler is implemented by a Handler that supports extended
// operations beyond StartTLS and WhoAmI, which the layer answers itself.
// Without it an unknown extended operation is answered protocolError (RFC
// 4511 4.12); a handler should do the same for names it does not know.
type ExtendedHandler interface {
	Extended(ctx context.Context, c *Conn, req *ExtendedRequest) ExtendedResult
}

// InlineSearcher is implemented by a Handler that can answer some searches
// at once from memory, without waiting on anything (a cached directory).
// When InlineSearch reports true for a search, the connection runs it on
// its reader instead of handing it to a worker: one goroutine hand-off
// less per search, and the next request is read once it is answered. It
// must itself be quick and must not block.
type InlineSearcher interface {
	InlineSearch(c *Conn, req *SearchRequest) bool
}

// ConnObserver is implemented by a Handler that wants to know when
// connections start and end, for instance to track sessions. ConnOpened
// runs before the first message is read (after the TLS handshake of a TLS
// listener); an error closes the connection at once and ConnClosed is not
// called for it. ConnClosed runs once, after every operation of the
// connection has returned.
type ConnObserver interface {
	ConnOpened(c *Conn) error
	ConnClosed(c *Conn)
}

// Result is the LDAPResult that ends an operation. Code is an LDAP result
// code; the constants of github.com/go-ldap/ldap/v3 (ldap.LDAPResultSuccess,
// ldap.LDAPResultInvalidCredentials, ...) fit it. The zero Result is
// success.
type Result struct {
	Code uint16
	// MatchedDN names the last entry found when the base was not
	// (noSuchObject).
	MatchedDN string
	// Message is the diagnostic message shown to users; it must hold no
	// secret.
	Message string
	// Referral holds LDAP URLs; it is sent only with code referral (10).
	Referral []string
	// Controls are response controls, such as the paging control built by
	// PagingResult.
	Controls []ldap.Control
}

// Failure returns a Result with code and a formatted diagnostic message.
func Failure(code uint16, format string, args ...any) Result {
	return Result{Code: code, Message: fmt.Sprintf(format, args...)}
}

// BindRequest is a simple bind (RFC 4511 4.2).
type BindRequest struct {
	// Version is the LDAP version the client asked for; always 3 when a
	// Handler sees it.
	Version int
	// DN is the name the client binds as, exactly as sent ("" for an
	// anonymous bind).
	DN string
	// Password is the simple credential. It is a secret: never log it.
	Password string
	// Controls are the request's controls.
	Controls []ldap.Control
}

// String describes r without its password, so that logging a request by
// accident leaks nothing.
func (r *BindRequest) String() string {
	return fmt.Sprintf("bind dn=%q version=%d password=<%d bytes redacted>", r.DN, r.Version, len(r.Password))
}

// SearchRequest is a search (RFC 4511 4.5.1).
type SearchRequest struct {
	BaseDN string
	// Scope is ldap.ScopeBaseObject (0), ldap.ScopeSingleLevel (1),
	// ldap.ScopeWholeSubtree (2) or 3 (subordinate subtree, a draft some
	// clients send).
	Scope int
	// DerefAliases is ldap.NeverDerefAliases ... ldap.DerefAlways.
	DerefAliases int
	// SizeLimit is the client's maximum number of entries; 0 means none.
	// The SearchWriter enforces it.
	SizeLimit int
	// TimeLimit is the client's limit in seconds; 0 means none. The layer
	// enforces it through ctx and answers timeLimitExceeded.
	TimeLimit int
	// TypesOnly asks for attribute types without values; the SearchWriter
	// drops values by itself.
	TypesOnly bool
	// Filter is the filter as go-ldap represents a compiled filter: a
	// context-class packet tagged ldap.FilterAnd ... ldap.FilterExtensibleMatch.
	// The layer has checked its structure and depth.
	Filter *ber.Packet
	// FilterString is Filter in RFC 4515 text, from ldap.DecompileFilter.
	FilterString string
	// Attributes lists the attributes asked for, as sent ("*", "+", "1.1"
	// and names).
	Attributes []string
	// Controls are the request's controls; the paging control appears as
	// *ldap.ControlPaging, others as *ldap.ControlString.
	Controls []ldap.Control
	// Paging is the Simple Paged Results control (RFC 2696) when the client
	// sent one, else nil. A handler that pages answers with a cookie through
	// PagingResult; if it returns success without a paging control the
	// layer adds one with an empty cookie, telling the client the result is
	// complete.
	Paging *ldap.ControlPaging
}

// PagingResult returns the response control of a paged search: cookie is
// the opaque cursor of the next page, empty on the last page.
func PagingResult(cookie []byte) ldap.Control {
	c := ldap.NewControlPaging(0)
	c.SetCookie(cookie)
	return c
}

// CompareRequest asks whether the entry DN has Attribute with Value (RFC
// 4511 4.10).
type CompareRequest struct {
	DN        string
	Attribute string
	Value     string
	Controls  []ldap.Control
}

// ExtendedRequest is an extended operation (RFC 4511 4.12).
type ExtendedRequest struct {
	// OID is the requestName.
	OID string
	// Value is the requestValue, nil when absent.
	Value    []byte
	Controls []ldap.Control
}

// ExtendedResult answers an ExtendedRequest. OID and Value, when set, are
// sent as responseName and responseValue.
type ExtendedResult struct {
	Result
	OID   string
	Value []byte
}

// Entry is one search result entry. Attributes are sent in the order
// given.
type Entry struct {
	DN         string
	Attributes []Attribute
}

// Attribute is one attribute of an Entry. Values may hold binary data. An
// Attribute without values is not sent, except in a typesOnly search,
// which sends no values at all (RFC 4511 4.1.7).
type Attribute struct {
	Type   string
	Values []string
}

// SearchWriter streams the results of one search to the client. Each call
// writes at once; nothing is buffered beyond one message. Calls are
// serialised; once Search has returned, they fail.
type SearchWriter interface {
	// WriteEntry sends a SearchResultEntry. It returns ErrSizeLimitExceeded,
	// without sending, once the client's size limit has been reached, and
	// the context's error once the operation was abandoned, timed out or
	// its connection closed: the handler should stop and return.
	WriteEntry(e *Entry) error
	// WriteReference sends a SearchResultReference holding LDAP URLs.
	WriteReference(urls ...string) error
}

// ErrSizeLimitExceeded is returned by SearchWriter.WriteEntry when the
// client's size limit is reached.
var ErrSizeLimitExceeded = errors.New("ldapserver: size limit exceeded")
