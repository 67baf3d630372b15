package radius

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"log/slog"
	"net/netip"
	"slices"

	"layeh.com/radius"
	"layeh.com/radius/vendors/microsoft"
)

// Reasons an EAP conversation ends in Access-Reject, as metric labels.
const (
	rejectEAPMalformed   = "eap_malformed"
	rejectEAPNoCert      = "eap_no_certificate"
	rejectEAPMethod      = "eap_method_refused"
	rejectEAPSession     = "eap_unknown_session"
	rejectEAPTLS         = "eap_tls_failed"
	rejectEAPSessionsMax = "eap_sessions_exhausted"
)

// TLS-based EAP methods' flags (RFC 5216 3.1, RFC 5281 9.1).
const (
	tlsFlagLength = 0x80
	tlsFlagMore   = 0x40
	tlsFlagStart  = 0x20
)

// maxFragment is the TLS data sent in one EAP-Request: with the EAP and
// RADIUS headers, the Message-Authenticator and the State it stays well
// under the 1500-byte MTU between NAS and outpost... of most links; the
// fragment and its EAP header are split into EAP-Message attributes.
const maxFragment = 1000

// eapReply is what one round trip of an EAP conversation answers.
type eapReply struct {
	code   radius.Code
	attrs  radius.Attributes
	reason string
}

// answerEAP runs one round trip of an EAP conversation: PEAP with GTC
// inside, or EAP-TTLS with PAP inside, over TLS with the provider's
// certificate, or EAP-TLS. The password from inside the tunnel runs the
// provider's flow as a PAP password does; EAP-TLS runs it with the
// client's certificate (eaptls.go).
func (p *Provider) answerEAP(ctx context.Context, req *request, log *slog.Logger) (radius.Code, radius.Attributes, string) {
	r := p.eapRoundTrip(ctx, req, log)
	return r.code, r.attrs, r.reason
}

func (p *Provider) eapRoundTrip(ctx context.Context, req *request, log *slog.Logger) eapReply {
	raw, _ := eapMessage(req.packet)
	nas := req.key.src.Addr()
	state, hasState := req.packet.Lookup(attrState)
	if len(raw) == 0 && !hasState {
		// EAP-Start (RFC 3579 2.1): the NAS leaves asking the client's
		// identity to us.
		if req.st.certs[req.cfg.PK] == nil {
			return eapReply{code: radius.CodeAccessReject, reason: rejectEAPNoCert}
		}
		sess := p.startEAP(req, nas)
		if sess == nil {
			return eapReply{code: radius.CodeAccessReject, reason: rejectEAPSessionsMax}
		}
		sess.mu.Lock()
		defer sess.mu.Unlock()
		sess.method = eapTypeIdentity
		return p.challenge(sess, nil)
	}
	msg, err := parseEAP(raw)
	if err != nil || msg.Code != eapResponse || len(raw) > maxEAPMessage {
		return eapReply{code: radius.CodeAccessReject, reason: rejectEAPMalformed}
	}
	fail := func(reason string) eapReply {
		return eapReply{code: radius.CodeAccessReject, reason: reason,
			attrs: eapAttributes(eapPacket{Code: eapFailure, ID: msg.ID}.encode())}
	}
	if !hasState {
		// The first packet: the client's identity, answered with a
		// method offer.
		if msg.Type != eapTypeIdentity {
			return fail(rejectEAPMalformed)
		}
		if req.st.certs[req.cfg.PK] == nil {
			return fail(rejectEAPNoCert)
		}
		sess := p.startEAP(req, nas)
		if sess == nil {
			return fail(rejectEAPSessionsMax)
		}
		sess.mu.Lock()
		defer sess.mu.Unlock()
		sess.outer = string(msg.Data)
		sess.id = msg.ID
		sess.method = eapTypePEAP
		return p.challenge(sess, []byte{tlsFlagStart})
	}
	sess := p.eap.find(state, req.cfg.PK, nas)
	if sess == nil {
		return fail(rejectEAPSession)
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.finished || msg.ID != sess.id {
		p.eap.end(sess)
		return fail(rejectEAPSession)
	}
	r := p.eapStep(ctx, req, sess, msg, log)
	if r.code != radius.CodeAccessChallenge {
		sess.finished = true
		p.eap.end(sess)
	}
	if r.code == radius.CodeAccessReject && r.attrs == nil {
		r.attrs = eapAttributes(eapPacket{Code: eapFailure, ID: msg.ID}.encode())
	}
	return r
}

// startEAP opens a conversation with a TLS server of the provider's
// certificate; nil when the provider has none or too many are open.
func (p *Provider) startEAP(req *request, nas netip.Addr) *eapSession {
	cert := req.st.certs[req.cfg.PK]
	if cert == nil {
		return nil
	}
	return p.eap.start(req.cfg.PK, nas, &tls.Config{
		Certificates: []tls.Certificate{*cert},
		// EAP-TLS (RFC 5216), EAP-TTLS and PEAP define their keys
		// over TLS 1.2.
		MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12,
		// No resumption: every conversation is a full handshake.
		SessionTicketsDisabled: true,
	})
}

// eapStep handles a response within a conversation.
func (p *Provider) eapStep(ctx context.Context, req *request, sess *eapSession, msg eapPacket, log *slog.Logger) eapReply {
	reject := func(reason string) eapReply { return eapReply{code: radius.CodeAccessReject, reason: reason} }
	if sess.method == eapTypeIdentity {
		// The answer to our identity request after an EAP-Start.
		if msg.Type != eapTypeIdentity {
			return reject(rejectEAPMalformed)
		}
		sess.outer = string(msg.Data)
		sess.method = eapTypePEAP
		return p.challenge(sess, []byte{tlsFlagStart})
	}
	switch msg.Type {
	case eapTypeNak:
		// The client wants another method: another TLS-based one, if
		// it names it and no TLS has started.
		if sess.tunnel.established() || len(sess.out) > 0 {
			return reject(rejectEAPMethod)
		}
		for _, m := range msg.Data {
			if (m == eapTypeTTLS || m == eapTypePEAP || m == eapTypeTLS) && m != sess.method {
				sess.method = m
				sess.tunnel.requestClientCertificate(m == eapTypeTLS)
				return p.challenge(sess, []byte{tlsFlagStart})
			}
		}
		log.Debug("EAP method refused", "wanted", msg.Data)
		return reject(rejectEAPMethod)
	case sess.method:
	default:
		return reject(rejectEAPMethod)
	}
	data := msg.Data
	if len(data) < 1 {
		return reject(rejectEAPMalformed)
	}
	flags, body := data[0], data[1:]
	if flags&tlsFlagLength != 0 {
		if len(body) < 4 {
			return reject(rejectEAPMalformed)
		}
		if binary.BigEndian.Uint32(body) > maxTunnelBuffer {
			return reject(rejectEAPMalformed)
		}
		body = body[4:]
	}
	if len(body) == 0 && flags&tlsFlagMore == 0 && len(sess.out) > 0 {
		// The client acknowledged a fragment of ours: the next one.
		return p.sendFragment(sess)
	}
	if len(sess.in)+len(body) > maxTunnelBuffer {
		return reject(rejectEAPMalformed)
	}
	sess.in = append(sess.in, body...)
	if flags&tlsFlagMore != 0 {
		// More fragments follow: acknowledge this one.
		return p.challenge(sess, []byte{0})
	}
	in := sess.in
	sess.in = nil
	out, err := sess.tunnel.feed(in)
	if err != nil {
		log.Info("EAP TLS session failed", "error", err)
		return reject(rejectEAPTLS)
	}
	if sess.method == eapTypeTLS && sess.tunnel.established() && !sess.tlsAuth.done {
		// EAP-TLS: the handshake just completed; the client's
		// certificate decides before our last flight goes out.
		if r, ok := p.tlsAuthenticate(ctx, req, sess, log); !ok {
			return r
		}
	}
	if !sess.tunnel.established() || len(out) > 0 {
		// The handshake goes on (or our last flight goes out; the
		// inner conversation starts after the client's next packet).
		if len(out) == 0 {
			return reject(rejectEAPTLS)
		}
		return p.queue(sess, out)
	}
	app := sess.tunnel.takeApp()
	switch sess.method {
	case eapTypeTLS:
		return p.tlsStep(req, sess, app, log)
	case eapTypeTTLS:
		return p.ttlsStep(ctx, req, sess, app, log)
	default:
		return p.peapStep(ctx, req, sess, msg, app, log)
	}
}

// queue sends a TLS message, fragmented as needed.
func (p *Provider) queue(sess *eapSession, records []byte) eapReply {
	sess.out, sess.outLen = records, len(records)
	return p.sendFragment(sess)
}

// sendFragment sends the next fragment of the queued TLS message.
func (p *Provider) sendFragment(sess *eapSession) eapReply {
	n := min(len(sess.out), maxFragment)
	var data []byte
	switch {
	case n == len(sess.out) && sess.outLen == n:
		data = append([]byte{0}, sess.out...)
	default:
		flags := byte(0)
		if n < len(sess.out) {
			flags |= tlsFlagMore
		}
		if len(sess.out) == sess.outLen {
			flags |= tlsFlagLength
			data = binary.BigEndian.AppendUint32([]byte{flags}, uint32(sess.outLen))
		} else {
			data = []byte{flags}
		}
		data = append(data, sess.out[:n]...)
	}
	sess.out = sess.out[n:]
	return p.challenge(sess, data)
}

// challenge sends an EAP-Request of the session's method with data (the
// flags byte first) in an Access-Challenge.
func (p *Provider) challenge(sess *eapSession, data []byte) eapReply {
	sess.id++
	pkt := eapPacket{Code: eapRequest, ID: sess.id, Type: sess.method, Data: data}
	attrs := eapAttributes(pkt.encode())
	attrs = append(attrs, &radius.AVP{Type: attrState, Attribute: slices.Clone(sess.state)})
	return eapReply{code: radius.CodeAccessChallenge, attrs: attrs}
}

// sendInner encrypts plain (an inner message) for the client.
func (p *Provider) sendInner(sess *eapSession, plain []byte) eapReply {
	out, err := sess.tunnel.write(plain)
	if err != nil {
		return eapReply{code: radius.CodeAccessReject, reason: rejectEAPTLS}
	}
	return p.queue(sess, out)
}

// succeed ends the conversation with EAP-Success, the keys the NAS
// encrypts the link with (MS-MPPE-Recv-Key and -Send-Key, RFC 2548, from
// the MSK) and the core's attributes.
func (p *Provider) succeed(req *request, sess *eapSession, label string, id byte, attrs radius.Attributes) eapReply {
	msk, err := sess.tunnel.keyingMaterial(label, 64)
	if err != nil {
		return eapReply{code: radius.CodeAccessReject, reason: rejectEAPTLS}
	}
	keys := &radius.Packet{Secret: req.packet.Secret, Authenticator: req.packet.Authenticator}
	if err := microsoft.MSMPPERecvKey_Add(keys, msk[:32]); err != nil {
		return eapReply{code: radius.CodeAccessReject, reason: rejectEAPTLS}
	}
	if err := microsoft.MSMPPESendKey_Add(keys, msk[32:64]); err != nil {
		return eapReply{code: radius.CodeAccessReject, reason: rejectEAPTLS}
	}
	out := eapAttributes(eapPacket{Code: eapSuccess, ID: id}.encode())
	out = append(out, keys.Attributes...)
	if u := sess.outer; u != "" && len(u) <= 253 {
		// The outer identity, so the NAS logs who it is (never the inner
		// name, which the client may have chosen to hide).
		out = append(out, &radius.AVP{Type: attrUserName, Attribute: []byte(u)})
	}
	return eapReply{code: radius.CodeAccessAccept, attrs: append(out, attrs...)}
}
