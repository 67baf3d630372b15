package ldapserver

import (
	"bufio"
	"context"
	"crypto/tls"

	ldap "github.com/go-ldap/ldap/v3"
)

// extended answers an extended operation other than StartTLS.
func (c *Conn) extended(ctx context.Context, req *ExtendedRequest) ExtendedResult {
	if req.OID == oidWhoAmI {
		return c.whoAmI(ctx, req)
	}
	if eh, ok := c.st.handler.(ExtendedHandler); ok {
		return eh.Extended(ctx, c, req)
	}
	// RFC 4511 4.12: an unrecognised requestName gets protocolError and
	// no responseName.
	return ExtendedResult{Result: Result{Code: ldap.LDAPResultProtocolError, Message: "unsupported extended operation " + req.OID}}
}

// whoAmI answers RFC 4532: the authorization identity of the connection,
// "dn:<DN>" once bound and empty when anonymous.
func (c *Conn) whoAmI(ctx context.Context, req *ExtendedRequest) ExtendedResult {
	if req.Value != nil {
		return ExtendedResult{Result: Result{Code: ldap.LDAPResultProtocolError, Message: "WhoAmI takes no value"}}
	}
	if wh, ok := c.st.handler.(WhoAmIHandler); ok {
		id, res := wh.WhoAmI(ctx, c)
		out := ExtendedResult{Result: res}
		if res.Code == ldap.LDAPResultSuccess {
			out.Value = []byte(id)
		}
		return out
	}
	id := ""
	if dn := c.BoundDN(); dn != "" {
		id = "dn:" + dn
	}
	return ExtendedResult{Value: []byte(id)}
}

// startTLS answers the StartTLS operation (RFC 4511 4.14) on the reader
// goroutine, so that no message is read while the connection changes
// underneath: it refuses when TLS is unavailable or already active or
// operations are in flight, and otherwise answers success, handshakes and
// returns a reader over the TLS connection.
func (c *Conn) startTLS(id int64, br *bufio.Reader) (*bufio.Reader, bool, error) {
	refuse := func(code uint16, msg string) (*bufio.Reader, bool, error) {
		err := c.write(nil, encodeExtended(id, &ExtendedResult{Result: Result{Code: code, Message: msg}, OID: oidStartTLS}))
		return br, false, err
	}
	if c.st.tlsConfig == nil {
		return refuse(ldap.LDAPResultProtocolError, "StartTLS is not available")
	}
	c.mu.Lock()
	active, inFlight := c.tlsState != nil, len(c.ops)
	c.mu.Unlock()
	switch {
	case active:
		return refuse(ldap.LDAPResultOperationsError, "TLS is already established")
	case inFlight > 0:
		return refuse(ldap.LDAPResultOperationsError, "operations are outstanding")
	case br.Buffered() > 0:
		// The client must wait for the response before it sends anything
		// (RFC 4511 4.14.1); bytes already here would be read as plain text.
		return br, false, malformed("data sent after StartTLS before its response")
	}

	c.wmu.Lock()
	defer c.wmu.Unlock()
	if d := c.st.writeTimeout; d > 0 {
		c.setWriteDeadline(d)
	}
	if _, err := c.nc.Write(encodeExtended(id, &ExtendedResult{OID: oidStartTLS})); err != nil {
		return br, true, nil
	}
	tc := tls.Server(c.nc, c.st.tlsConfig)
	c.setDeadline(c.st.readTimeout)
	err := tc.HandshakeContext(c.ctx)
	c.clearDeadline()
	if err != nil {
		c.log.Debug("ldap StartTLS handshake failed", "error", err)
		return br, true, nil
	}
	c.nc = tc
	state := tc.ConnectionState()
	c.mu.Lock()
	c.tlsState = &state
	c.mu.Unlock()
	c.log.Debug("ldap StartTLS established", "sni", state.ServerName, "version", tls.VersionName(state.Version))
	return bufio.NewReader(tc), false, nil
}
