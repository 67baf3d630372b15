package radius

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"

	"layeh.com/radius"
)

// The conversations inside the TLS tunnel.

// Diameter AVP flags and the codes EAP-TTLS/PAP uses (RFC 5281 11.2.5).
const (
	avpFlagVendor   = 0x80
	avpUserName     = 1
	avpUserPassword = 2
)

// ttlsAVPs reads the User-Name and User-Password AVPs of an EAP-TTLS
// client message. ok is false when the AVPs are malformed or a mandatory
// one is not understood.
func ttlsAVPs(b []byte) (user, password []byte, ok bool) {
	for len(b) > 0 {
		if len(b) < 8 {
			return nil, nil, false
		}
		code := binary.BigEndian.Uint32(b[0:4])
		flags := b[4]
		l := int(b[5])<<16 | int(b[6])<<8 | int(b[7])
		hdr := 8
		if flags&avpFlagVendor != 0 {
			hdr = 12
		}
		if l < hdr || l > len(b) {
			return nil, nil, false
		}
		value := b[hdr:l]
		switch {
		case flags&avpFlagVendor == 0 && code == avpUserName:
			user = value
		case flags&avpFlagVendor == 0 && code == avpUserPassword:
			// Padded with NULs to a multiple of 16 (RFC 5281 11.2.5).
			password = bytes.TrimRight(value, "\x00")
		case flags&0x40 != 0:
			// A mandatory AVP we do not know (RFC 5281 10.1).
			return nil, nil, false
		}
		padded := (l + 3) &^ 3
		if padded > len(b) {
			padded = len(b)
		}
		b = b[padded:]
	}
	return user, password, true
}

// ttlsStep handles the client's AVPs: PAP inside EAP-TTLS.
func (p *Provider) ttlsStep(ctx context.Context, req *request, sess *eapSession, app []byte, log *slog.Logger) eapReply {
	if len(app) == 0 {
		// Nothing inside yet: ask again.
		return p.challenge(sess, []byte{0})
	}
	user, password, ok := ttlsAVPs(app)
	if !ok || len(user) == 0 || password == nil {
		log.Debug("EAP-TTLS without a PAP User-Name and User-Password")
		return eapReply{code: radius.CodeAccessReject, reason: rejectEAPMethod}
	}
	attrs, reason := p.verify(ctx, req, string(user), string(password), log)
	if reason != "" {
		return eapReply{code: radius.CodeAccessReject, reason: reason}
	}
	return p.succeed(req, sess, "ttls keying material", sess.id, attrs)
}

// PEAP (version 0, as Windows and wpa_supplicant speak it): inside the
// tunnel, EAP packets without their 4-byte header, except the
// Extensions packet that carries the result, which keeps it.

// peapState is where a PEAP conversation is.
type peapState struct {
	phase  int // 0: tunnel up; 1: identity asked; 2: password asked; 3: result sent
	user   string
	passed bool
	attrs  radius.Attributes
	reason string
	inner  byte // identifier of the inner EAP-Request
}

// Result TLV (PEAPv0 extensions, [MS-PEAP] 2.2.8.1): mandatory, type 3.
const (
	tlvResult       = 0x8003
	tlvResultOK     = 1
	tlvResultFailed = 2
)

// peapStep runs GTC inside PEAP: identity, then the password as the GTC
// response, then the result.
func (p *Provider) peapStep(ctx context.Context, req *request, sess *eapSession, msg eapPacket, app []byte, log *slog.Logger) eapReply {
	st := &sess.peap
	switch st.phase {
	case 0:
		st.phase = 1
		return p.sendInner(sess, []byte{eapTypeIdentity})
	case 1:
		if len(app) < 1 || app[0] != eapTypeIdentity || len(app) == 1 {
			return eapReply{code: radius.CodeAccessReject, reason: rejectEAPMalformed}
		}
		st.user = string(app[1:])
		st.phase = 2
		return p.sendInner(sess, append([]byte{eapTypeGTC}, "Password: "...))
	case 2:
		if len(app) < 1 || app[0] != eapTypeGTC {
			// A Nak (the client does not do GTC) or nonsense.
			log.Debug("PEAP inner method refused", "type", firstByte(app))
			return eapReply{code: radius.CodeAccessReject, reason: rejectEAPMethod}
		}
		st.attrs, st.reason = p.verify(ctx, req, st.user, string(app[1:]), log)
		st.passed = st.reason == ""
		st.phase = 3
		result := uint16(tlvResultFailed)
		if st.passed {
			result = tlvResultOK
		}
		st.inner++
		tlv := binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil,
			tlvResult), 2), result)
		ext := eapPacket{Code: eapRequest, ID: st.inner, Type: eapTypeExtensions, Data: tlv}
		return p.sendInner(sess, ext.encode())
	case 3:
		ext, err := parseEAP(app)
		if err != nil || ext.Code != eapResponse || ext.Type != eapTypeExtensions {
			return eapReply{code: radius.CodeAccessReject, reason: rejectEAPMalformed}
		}
		if !st.passed {
			return eapReply{code: radius.CodeAccessReject, reason: st.reason}
		}
		if !bytes.Equal(ext.Data, []byte{0x80, 0x03, 0, 2, 0, tlvResultOK}) {
			return eapReply{code: radius.CodeAccessReject, reason: rejectEAPMethod}
		}
		return p.succeed(req, sess, "client EAP encryption", msg.ID, st.attrs)
	}
	return eapReply{code: radius.CodeAccessReject, reason: rejectEAPMalformed}
}

func firstByte(b []byte) int {
	if len(b) == 0 {
		return -1
	}
	return int(b[0])
}
