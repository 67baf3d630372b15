package radius

import (
	"crypto/hmac"
	"crypto/md5"
	"errors"

	"layeh.com/radius"
)

// Attribute types this package reads or writes itself.
const (
	attrUserName             = 1
	attrUserPassword         = 2
	attrCHAPPassword         = 3
	attrProxyState           = 33
	attrEAPMessage           = 79
	attrMessageAuthenticator = 80
)

// Reasons a request is dropped without an answer, as metric labels.
const (
	dropMalformed            = "malformed_packet"
	dropUnsupportedCode      = "unsupported_code"
	dropNotConfigured        = "no_provider"
	dropClientNetwork        = "client_network"
	dropMissingAuthenticator = "missing_message_authenticator"
	dropInvalidAuthenticator = "invalid_message_authenticator"
	dropOverloaded           = "overloaded"
)

// messageAuthenticator finds the offset of the value of the one
// Message-Authenticator attribute in the raw packet b (whose attributes
// have been checked to be well formed), or -1 when there is none or the
// attribute is not usable: not 16 bytes, or present twice (RFC 3579 3.2
// allows one).
func messageAuthenticator(b []byte) int {
	at := -1
	for i := 20; i+2 <= len(b); {
		typ, l := b[i], int(b[i+1])
		if l < 2 || i+l > len(b) {
			return -1
		}
		if typ == attrMessageAuthenticator {
			if l != 18 || at >= 0 {
				return -1
			}
			at = i + 2
		}
		i += l
	}
	return at
}

// verifyMessageAuthenticator checks the Message-Authenticator at offset at
// of the Access-Request b against secret: HMAC-MD5 keyed with the secret
// over the whole packet with the attribute's value taken as sixteen zero
// bytes (RFC 3579 3.2). It does not modify b.
func verifyMessageAuthenticator(b []byte, at int, secret []byte) bool {
	var zero [16]byte
	mac := hmac.New(md5.New, secret)
	mac.Write(b[:at])
	mac.Write(zero[:])
	mac.Write(b[at+16:])
	return hmac.Equal(mac.Sum(nil), b[at:at+16])
}

// encodeReply encodes a reply to req with Message-Authenticator as its
// first attribute (as the BlastRADIUS advisories recommend), computed over
// the reply with the request's authenticator in its header, and then the
// Response Authenticator over the whole reply.
func encodeReply(req *radius.Packet, code radius.Code, attrs radius.Attributes) ([]byte, error) {
	reply := req.Response(code)
	reply.Attributes = make(radius.Attributes, 0, len(attrs)+2)
	reply.Attributes.Add(attrMessageAuthenticator, make([]byte, 16))
	reply.Attributes = append(reply.Attributes, attrs...)
	// RFC 2865 5.33: Proxy-State attributes are copied, in order, into
	// the reply.
	for _, avp := range req.Attributes {
		if avp.Type == attrProxyState {
			reply.Attributes.Add(attrProxyState, avp.Attribute)
		}
	}
	raw, err := reply.MarshalBinary()
	if err != nil {
		return nil, err
	}
	mac := hmac.New(md5.New, req.Secret)
	mac.Write(raw)
	copy(reply.Attributes[0].Attribute, mac.Sum(nil))
	out, err := reply.Encode()
	if err != nil {
		return nil, err
	}
	if messageAuthenticator(out) != 22 {
		return nil, errors.New("radius: the reply's Message-Authenticator is not its first attribute")
	}
	return out, nil
}

// hmacMD5 is HMAC-MD5 of b keyed with secret.
func hmacMD5(secret, b []byte) []byte {
	mac := hmac.New(md5.New, secret)
	mac.Write(b)
	return mac.Sum(nil)
}
