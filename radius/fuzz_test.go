package radius

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/netip"
	"testing"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
)

// FuzzPacket feeds datagrams to the read loop's judgement and, for those
// it accepts, to the password decoding and reply encoding an
// authentication does: no input may panic, and an accepted request always
// has a provider and a verified Message-Authenticator.
func FuzzPacket(f *testing.F) {
	cfg, err := decodeProvider(json.RawMessage(`{"pk": 1, "name": "p", "application_slug": "a",
		"auth_flow_slug": "f", "client_networks": "127.0.0.0/8", "shared_secret": "s3cret"}`))
	if err != nil {
		f.Fatal(err)
	}
	st := &state{providers: []*providerConfig{cfg}, outpostName: "o"}
	p, err := New(testDeps(f), Config{})
	if err != nil {
		f.Fatal(err)
	}
	from := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1000}
	seed := func(user, password string, extra ...*radius.AVP) []byte {
		pkt := radius.New(radius.CodeAccessRequest, []byte("s3cret"))
		_ = rfc2865.UserName_SetString(pkt, user)
		_ = rfc2865.UserPassword_SetString(pkt, password)
		pkt.Attributes = append(pkt.Attributes, extra...)
		pkt.Add(attrMessageAuthenticator, make([]byte, 16))
		raw, _ := pkt.Encode()
		at := messageAuthenticator(raw)
		sign(raw, at, []byte("s3cret"))
		return raw
	}
	f.Add(seed("alice", "alice-pw"))
	f.Add(seed("", ""))
	f.Add(seed("bob", "a;123456", &radius.AVP{Type: attrProxyState, Attribute: []byte("x")}))
	f.Add([]byte{1, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		req, reason := p.judge(st, from, b)
		if reason != "" {
			return
		}
		if req == nil || req.cfg != cfg || req.packet == nil {
			t.Fatalf("accepted without a provider: %+v", req)
		}
		at := messageAuthenticator(req.raw)
		if at < 0 || !verifyMessageAuthenticator(req.raw, at, []byte("s3cret")) {
			t.Fatal("accepted without a valid Message-Authenticator")
		}
		if enc, ok := req.packet.Lookup(attrUserPassword); ok {
			_, _ = radius.UserPassword(enc, req.packet.Secret, req.packet.Authenticator[:])
		}
		for _, code := range []radius.Code{radius.CodeAccessAccept, radius.CodeAccessReject} {
			reply, err := encodeReply(req.packet, code, nil)
			if err != nil {
				continue
			}
			if !radius.IsAuthenticResponse(reply, req.raw, []byte("s3cret")) {
				t.Fatal("a reply that does not authenticate")
			}
		}
	})
}

// sign fills in the Message-Authenticator at offset at.
func sign(raw []byte, at int, secret []byte) {
	if at < 0 {
		return
	}
	copy(raw[at:at+16], make([]byte, 16))
	mac := hmacMD5(secret, raw)
	copy(raw[at:at+16], mac)
}

// FuzzCoreAttributes: whatever the core's check_access holds in
// attributes, decoding it never panics and never lets through the
// attributes this package owns.
func FuzzCoreAttributes(f *testing.F) {
	f.Add("AQAAGgAAAAAAAAAAAAAAAAAAAAAZBmFiY2Q=")
	f.Add("")
	f.Add("!!")
	f.Fuzz(func(t *testing.T, s string) {
		attrs, reason := coreAttributes(s, []byte("x"))
		if reason != "" && attrs != nil {
			t.Fatal("attributes with a failure")
		}
		for _, a := range attrs {
			switch a.Type {
			case attrMessageAuthenticator, attrUserPassword, attrProxyState, attrEAPMessage:
				t.Fatalf("attribute %d passed through", a.Type)
			}
		}
	})
}

// FuzzEAP drives EAP conversations with what a supplicant may send: each
// step of the input is one EAP-Response (a length, a type, the data)
// answering the server's last request, with the right identifier and
// State: PEAP, EAP-TTLS, or EAP-TLS after a Nak. No input may panic,
// leave a TLS goroutine behind or get an Access-Accept without the core.
func FuzzEAP(f *testing.F) {
	cfg, err := decodeProvider(json.RawMessage(`{"pk": 1, "name": "p", "application_slug": "a",
		"auth_flow_slug": "f", "client_networks": "127.0.0.0/8", "shared_secret": "s3cret"}`))
	if err != nil {
		f.Fatal(err)
	}
	tlsCfg := testTLSConfig(f)
	st := &state{providers: []*providerConfig{cfg}, outpostName: "o", certs: map[int]*tls.Certificate{1: &tlsCfg.Certificates[0]}}
	from := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1000}
	f.Add([]byte{1, eapTypeNak, eapTypeTTLS})
	f.Add([]byte{1, eapTypePEAP, 0})
	f.Add([]byte{5, eapTypePEAP, 0x80, 0, 0, 0, 9, 3, eapTypePEAP, 0x40, 1, 2})
	f.Add([]byte{6, eapTypePEAP, 0, 0x16, 3, 1, 0, 1})
	f.Add([]byte{2, eapTypeNak, eapTypeTTLS, 1, eapTypeTTLS, 0xc0})
	f.Add([]byte{1, eapTypeNak, eapTypeTLS, 6, eapTypeTLS, 0, 0x16, 3, 1, 0, 1})
	f.Add([]byte{3, eapTypeNak, eapTypeTLS, eapTypePEAP, 5, eapTypeTLS, 0xa0, 0, 0, 0, 2})
	f.Fuzz(func(t *testing.T, steps []byte) {
		p, err := New(testDeps(t), Config{})
		if err != nil {
			t.Fatal(err)
		}
		log := p.logger()
		round := func(msg eapPacket, state []byte) eapReply {
			pkt := radius.New(radius.CodeAccessRequest, []byte("s3cret"))
			pkt.Attributes = append(pkt.Attributes, eapAttributes(msg.encode())...)
			if state != nil {
				pkt.Add(attrState, state)
			}
			req := &request{packet: pkt, cfg: cfg, st: st, from: from,
				key: dupKey{src: netip.MustParseAddrPort("127.0.0.1:1000"), id: pkt.Identifier}}
			return p.eapRoundTrip(context.Background(), req, log)
		}
		r := round(eapPacket{Code: eapResponse, ID: 1, Type: eapTypeIdentity, Data: []byte("alice")}, nil)
		for len(steps) >= 2 && r.code == radius.CodeAccessChallenge {
			n, typ := int(steps[0]), steps[1]
			steps = steps[2:]
			n = min(n, len(steps))
			data := steps[:n]
			steps = steps[n:]
			var last eapPacket
			var state []byte
			for _, avp := range r.attrs {
				switch avp.Type {
				case attrEAPMessage:
					last.Data = append(last.Data, avp.Attribute...)
				case attrState:
					state = avp.Attribute
				}
			}
			req, err := parseEAP(last.Data)
			if err != nil || req.Code != eapRequest || state == nil {
				t.Fatalf("a challenge without a request and State: %v", err)
			}
			r = round(eapPacket{Code: eapResponse, ID: req.ID, Type: typ, Data: data}, state)
		}
		if r.code == radius.CodeAccessAccept {
			t.Fatal("accepted without the core")
		}
		p.eap.closeAll()
		p.tunnels.Wait()
	})
}
