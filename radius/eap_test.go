package radius

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
)

// eapRequest is a signed Access-Request carrying the EAP packet msg, and
// state when not nil.
func eapAccessRequest(t *testing.T, secret string, msg eapPacket, state []byte) []byte {
	t.Helper()
	pkt := radius.New(radius.CodeAccessRequest, []byte(secret))
	rfc2865.UserName_SetString(pkt, "alice")
	pkt.Attributes = append(pkt.Attributes, eapAttributes(msg.encode())...)
	if state != nil {
		pkt.Add(attrState, state)
	}
	return signRequest(t, pkt, []byte(secret))
}

// replyEAP is the EAP packet and State of a reply.
func replyEAP(t *testing.T, reply *radius.Packet) (eapPacket, []byte) {
	t.Helper()
	raw, ok := eapMessage(reply)
	if !ok {
		t.Fatalf("%v without EAP-Message", reply.Code)
	}
	msg, err := parseEAP(raw)
	if err != nil {
		t.Fatal(err)
	}
	state, _ := reply.Lookup(attrState)
	return msg, state
}

// The EAP conversation's guards: a provider without a certificate, a State
// nobody issued, a State used from another NAS or under another secret,
// an identifier out of step, a first packet that is not an identity. Each
// ends in Access-Reject with EAP-Failure, never in a flow.
func TestEAPConversationGuards(t *testing.T) {
	s := startStack(t, eapBlueprint, Config{})
	waitFor(t, "wifi's certificate", func() bool { st := s.p.state.Load(); return st != nil && len(st.certs) == 1 })
	n := s.nas(t)
	identity := eapPacket{Code: eapResponse, ID: 7, Type: eapTypeIdentity, Data: []byte("alice")}
	exchange := func(n *nas, secret string, raw []byte) *radius.Packet {
		t.Helper()
		return checkReply(t, n.send(raw, 10*time.Second), raw, secret)
	}
	wantFailure := func(reply *radius.Packet, reason string, before float64) {
		t.Helper()
		if reply.Code != radius.CodeAccessReject {
			t.Fatalf("reply %v", reply.Code)
		}
		if msg, _ := replyEAP(t, reply); msg.Code != eapFailure {
			t.Errorf("EAP code %d, want failure", msg.Code)
		}
		if got := s.rejected(reason, "wifi"); got != before+1 {
			t.Errorf("rejected{reason=%s} went from %v to %v", reason, before, got)
		}
	}
	s.core.ResetRequests()

	// lab has no certificate.
	before := s.rejected(rejectEAPNoCert, "lab")
	raw := eapAccessRequest(t, "lab-secret", identity, nil)
	if reply := exchange(n, "lab-secret", raw); reply.Code != radius.CodeAccessReject || s.rejected(rejectEAPNoCert, "lab") != before+1 {
		t.Errorf("EAP without a certificate: %v", reply.Code)
	}
	before = s.rejected(rejectEAPSession, "wifi")
	wantFailure(exchange(n, "wifi-secret", eapAccessRequest(t, "wifi-secret",
		eapPacket{Code: eapResponse, ID: 1, Type: eapTypePEAP, Data: []byte{0}}, bytes.Repeat([]byte{1}, 16))),
		rejectEAPSession, before)
	before = s.rejected(rejectEAPMalformed, "wifi")
	wantFailure(exchange(n, "wifi-secret", eapAccessRequest(t, "wifi-secret",
		eapPacket{Code: eapResponse, ID: 1, Type: eapTypePEAP, Data: []byte{0}}, nil)), rejectEAPMalformed, before)

	// A conversation: the identity is answered with a PEAP start.
	reply := exchange(n, "wifi-secret", eapAccessRequest(t, "wifi-secret", identity, nil))
	if reply.Code != radius.CodeAccessChallenge {
		t.Fatalf("identity answered %v", reply.Code)
	}
	start, state := replyEAP(t, reply)
	if start.Code != eapRequest || start.Type != eapTypePEAP || len(start.Data) != 1 || start.Data[0]&tlsFlagStart == 0 ||
		start.ID != identity.ID+1 || len(state) != 16 {
		t.Fatalf("start %+v, state % x", start, state)
	}
	// Its State under a provider it was not issued for names nothing.
	before = s.rejected(rejectEAPSession, "lab")
	other := eapAccessRequest(t, "lab-secret", eapPacket{Code: eapResponse, ID: start.ID, Type: eapTypePEAP, Data: []byte{0}}, state)
	if r := exchange(n, "lab-secret", other); r.Code != radius.CodeAccessReject || s.rejected(rejectEAPSession, "lab") != before+1 {
		t.Errorf("a State used under another provider: %v", r.Code)
	}
	// A Nak for TTLS switches the method.
	reply = exchange(n, "wifi-secret", eapAccessRequest(t, "wifi-secret",
		eapPacket{Code: eapResponse, ID: start.ID, Type: eapTypeNak, Data: []byte{eapTypeTTLS}}, state))
	ttls, state2 := replyEAP(t, reply)
	if reply.Code != radius.CodeAccessChallenge || ttls.Type != eapTypeTTLS || !bytes.Equal(state, state2) {
		t.Fatalf("after a Nak: %v %+v", reply.Code, ttls)
	}
	// An identifier out of step ends the conversation.
	before = s.rejected(rejectEAPSession, "wifi")
	wantFailure(exchange(n, "wifi-secret", eapAccessRequest(t, "wifi-secret",
		eapPacket{Code: eapResponse, ID: ttls.ID + 5, Type: eapTypeTTLS, Data: []byte{0}}, state)), rejectEAPSession, before)
	before = s.rejected(rejectEAPSession, "wifi")
	wantFailure(exchange(n, "wifi-secret", eapAccessRequest(t, "wifi-secret",
		eapPacket{Code: eapResponse, ID: ttls.ID, Type: eapTypeTTLS, Data: []byte{0}}, state)), rejectEAPSession, before)

	// EAP-Start: an empty EAP-Message, answered with an identity
	// request; the identity then gets the PEAP start.
	startPkt := radius.New(radius.CodeAccessRequest, []byte("wifi-secret"))
	rfc2865.UserName_SetString(startPkt, "alice")
	startPkt.Add(attrEAPMessage, nil)
	raw = signRequest(t, startPkt, []byte("wifi-secret"))
	reply = exchange(n, "wifi-secret", raw)
	ask, state := replyEAP(t, reply)
	if reply.Code != radius.CodeAccessChallenge || ask.Code != eapRequest || ask.Type != eapTypeIdentity || len(ask.Data) != 0 {
		t.Fatalf("EAP-Start answered %v %+v", reply.Code, ask)
	}
	reply = exchange(n, "wifi-secret", eapAccessRequest(t, "wifi-secret",
		eapPacket{Code: eapResponse, ID: ask.ID, Type: eapTypeIdentity, Data: []byte("alice")}, state))
	if peap, _ := replyEAP(t, reply); reply.Code != radius.CodeAccessChallenge || peap.Type != eapTypePEAP || peap.Data[0] != tlsFlagStart {
		t.Fatalf("after EAP-Start and identity: %v %+v", reply.Code, peap)
	}

	// Garbage where the ClientHello belongs fails the TLS session.
	reply = exchange(n, "wifi-secret", eapAccessRequest(t, "wifi-secret", identity, nil))
	start, state = replyEAP(t, reply)
	before = s.rejected(rejectEAPTLS, "wifi")
	wantFailure(exchange(n, "wifi-secret", eapAccessRequest(t, "wifi-secret",
		eapPacket{Code: eapResponse, ID: start.ID, Type: eapTypePEAP, Data: append([]byte{0}, "not TLS at all"...)}, state)),
		rejectEAPTLS, before)
	if c := s.core.RequestCount("/api/v3/flows/"); c != 0 {
		t.Errorf("%d flow requests", c)
	}
}

// Sessions end: at most maxEAPSessions are open, and they expire.
func TestEAPSessionsBounded(t *testing.T) {
	var wg sync.WaitGroup
	now := time.Unix(0, 0)
	s := newEAPSessions(func() time.Time { return now }, &wg)
	cfg := testTLSConfig(t)
	var first *eapSession
	for i := range maxEAPSessions {
		sess := s.start(1, localhost, cfg)
		if sess == nil {
			t.Fatalf("session %d refused", i)
		}
		if first == nil {
			first = sess
		}
	}
	if s.start(1, localhost, cfg) != nil {
		t.Error("a session past the bound")
	}
	if s.find(first.state, 1, localhost) != first {
		t.Error("the first session is gone")
	}
	now = now.Add(eapSessionTTL + time.Second)
	if s.find(first.state, 1, localhost) != nil {
		t.Error("an expired session found")
	}
	if s.start(1, localhost, cfg) == nil {
		t.Error("no room after expiry")
	}
	s.closeAll()
	wg.Wait()
}
