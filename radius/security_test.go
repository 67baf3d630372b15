package radius

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/akoutpost/akoutpost/outpost/outposttest"
)

// BlastRADIUS (CVE-2024-3596) forges an Access-Accept from a
// man-in-the-middle position by colliding MD5 over a request without
// Message-Authenticator. authentik's outpost checked the attribute the
// wrong way round (and let requests without one through), so it never
// refused a request. Here every Access-Request must carry a valid one:
// without it, with a wrong one, or signed with a secret no provider of
// the client's networks has, the request is dropped unanswered (RFC 2865
// 3: silently discarded) and counted, and the core is never asked.
func TestMessageAuthenticatorRequired(t *testing.T) {
	s := startStack(t, testBlueprint, Config{})
	n := s.nas(t)
	unsigned := func() *radius.Packet {
		pkt := radius.New(radius.CodeAccessRequest, []byte("wifi-secret"))
		rfc2865.UserName_SetString(pkt, "alice")
		rfc2865.UserPassword_SetString(pkt, "alice-pw")
		return pkt
	}
	encode := func(pkt *radius.Packet) []byte {
		raw, err := pkt.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	tampered := papRequest(t, "wifi-secret", "alice", "alice-pw")
	tampered[len(tampered)-1] ^= 1
	// A request altered after signing: the attacker changes an
	// attribute and keeps the Message-Authenticator.
	altered := unsigned()
	rfc2865.NASIdentifier_SetString(altered, "nas-a")
	alteredRaw := signRequest(t, altered, []byte("wifi-secret"))
	alteredRaw[len(alteredRaw)-18-1] = 'b' // the last byte of "nas-a", before Message-Authenticator
	short := unsigned()
	short.Add(attrMessageAuthenticator, make([]byte, 15))
	twice := unsigned()
	twice.Add(attrMessageAuthenticator, make([]byte, 16))
	twiceRaw := signRequest(t, twice, []byte("wifi-secret"))
	twiceRaw = append(twiceRaw, attrMessageAuthenticator, 18)
	twiceRaw = append(twiceRaw, make([]byte, 16)...)
	twiceRaw[2], twiceRaw[3] = byte(len(twiceRaw)>>8), byte(len(twiceRaw))

	for _, tc := range []struct {
		name   string
		raw    []byte
		reason string
	}{
		{"missing", encode(unsigned()), dropMissingAuthenticator},
		{"wrong length", encode(short), dropMissingAuthenticator},
		{"present twice", twiceRaw, dropMissingAuthenticator},
		{"forged", tampered, dropInvalidAuthenticator},
		{"request altered", alteredRaw, dropInvalidAuthenticator},
		{"wrong secret", papRequest(t, "guessed-secret", "alice", "alice-pw"), dropInvalidAuthenticator},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.core.ResetRequests()
			before := s.rejected(tc.reason, "")
			if reply := n.send(tc.raw, noReply); reply != nil {
				t.Fatalf("answered: % x", reply)
			}
			if got := s.rejected(tc.reason, ""); got != before+1 {
				t.Errorf("rejected{reason=%s} went from %v to %v", tc.reason, before, got)
			}
			if c := s.core.RequestCount("/api/v3/"); c != 0 {
				t.Errorf("the core was asked %d times", c)
			}
		})
	}
	// The same request, properly signed, is answered: the drops above
	// were for the reasons named.
	req := papRequest(t, "wifi-secret", "alice", "alice-pw")
	if reply := checkReply(t, n.send(req, 10*time.Second), req, "wifi-secret"); reply.Code != radius.CodeAccessAccept {
		t.Errorf("a signed request: %v", reply.Code)
	}
}

// A retransmission (same source, identifier and bytes) is answered with
// the reply already sent, without running the flow again; a new request
// reusing the identifier is a new request.
func TestDuplicateAnsweredFromCache(t *testing.T) {
	s := startStack(t, testBlueprint, Config{})
	n := s.nas(t)
	req := papRequest(t, "wifi-secret", "alice", "alice-pw")
	s.core.ResetRequests()
	first := n.send(req, 10*time.Second)
	checkReply(t, first, req, "wifi-secret")
	flows := s.core.RequestCount("/api/v3/flows/")
	if flows == 0 {
		t.Fatal("the first request ran no flow")
	}
	for i := range 3 {
		again := n.send(req, 10*time.Second)
		if !bytes.Equal(again, first) {
			t.Fatalf("retransmission %d answered differently:\n% x\n% x", i, again, first)
		}
	}
	if got := s.core.RequestCount("/api/v3/"); got != flows+1 {
		t.Errorf("%d core requests after retransmissions, want the first authentication's %d", got, flows+1)
	}
	// Same identifier, new authenticator (a new request): answered anew.
	pkt := radius.New(radius.CodeAccessRequest, []byte("wifi-secret"))
	pkt.Identifier = req[1]
	rfc2865.UserName_SetString(pkt, "alice")
	rfc2865.UserPassword_SetString(pkt, "wrong")
	other := signRequest(t, pkt, []byte("wifi-secret"))
	if reply := checkReply(t, n.send(other, 10*time.Second), other, "wifi-secret"); reply.Code != radius.CodeAccessReject {
		t.Errorf("a new request under the same identifier: %v", reply.Code)
	}
	// Another source with the same bytes is another client's request.
	s.core.ResetRequests()
	if reply := checkReply(t, s.nas(t).send(req, 10*time.Second), req, "wifi-secret"); reply.Code != radius.CodeAccessAccept {
		t.Errorf("from another port: %v", reply.Code)
	}
	if s.core.RequestCount("/api/v3/flows/") == 0 {
		t.Error("a request from another source was answered from the cache")
	}
}

// A retransmission that arrives while its request is still being answered
// is dropped; the one reply answers both.
func TestDuplicateWhileRunning(t *testing.T) {
	s := startStack(t, testBlueprint, Config{})
	s.core.Fault(outposttest.Fault{PathPrefix: "/api/v3/outposts/radius/", Delay: 500 * time.Millisecond, Count: 1})
	n := s.nas(t)
	req := papRequest(t, "lab-secret", "alice", "alice-pw")
	s.core.ResetRequests()
	if _, err := n.conn.WriteToUDP(req, n.to); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := n.conn.WriteToUDP(req, n.to); err != nil {
		t.Fatal(err)
	}
	checkReply(t, n.read(10*time.Second), req, "lab-secret")
	if extra := n.read(noReply); extra != nil {
		t.Errorf("a second reply: % x", extra)
	}
	if c := s.core.RequestCount("/api/v3/outposts/radius/"); c != 1 {
		t.Errorf("%d access checks, want 1", c)
	}
}

// Clients outside every provider's client_networks are dropped unanswered;
// client_networks and secrets follow the core's configuration live.
func TestClientNetworksAndLiveUpdate(t *testing.T) {
	s := startStack(t, testBlueprint, Config{})
	n := s.nas(t)
	ask := func(secret string) []byte {
		return n.send(papRequest(t, secret, "alice", "alice-pw"), noReply*3)
	}
	// Move lab away from loopback: its secret no longer counts here.
	if err := s.core.UpdateProvider("lab", map[string]any{"client_networks": "192.0.2.0/24"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "lab to leave loopback", func() bool { return ask("lab-secret") == nil })
	// Move wifi away too: nothing serves loopback, every packet is
	// dropped as out of network.
	if err := s.core.UpdateProvider("wifi", map[string]any{"client_networks": "10.0.0.0/8"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "wifi to leave loopback", func() bool { return ask("wifi-secret") == nil })
	before := s.rejected(dropClientNetwork, "")
	if reply := ask("wifi-secret"); reply != nil {
		t.Fatal("answered a client outside every network")
	}
	if got := s.rejected(dropClientNetwork, ""); got != before+1 {
		t.Errorf("client_network drops went from %v to %v", before, got)
	}
	// Back, with a new secret: the old one is refused, the new one works.
	if err := s.core.UpdateProvider("wifi", map[string]any{"client_networks": "127.0.0.1", "shared_secret": "rotated"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the rotated secret", func() bool { return ask("rotated") != nil })
	if reply := ask("wifi-secret"); reply != nil {
		t.Error("the old secret is still accepted")
	}
	req := papRequest(t, "rotated", "alice", "alice-pw")
	if reply := checkReply(t, n.send(req, 10*time.Second), req, "rotated"); reply.Code != radius.CodeAccessAccept {
		t.Errorf("with the rotated secret: %v", reply.Code)
	}
}

// Requests that are not Access-Requests, and garbage, are dropped and
// counted; the server keeps answering.
func TestMalformedDropped(t *testing.T) {
	s := startStack(t, testBlueprint, Config{})
	n := s.nas(t)
	acct := radius.New(radius.CodeAccountingRequest, []byte("wifi-secret"))
	acctRaw, _ := acct.Encode()
	for _, tc := range []struct {
		name   string
		raw    []byte
		reason string
	}{
		{"short", []byte{1, 2, 0, 20}, dropMalformed},
		{"length past the datagram", append([]byte{1, 2, 0, 200}, make([]byte, 16)...), dropMalformed},
		{"bad attribute length", append(append([]byte{1, 2, 0, 23}, make([]byte, 16)...), 1, 9, 'a'), dropMalformed},
		{"accounting", acctRaw, dropUnsupportedCode},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := s.rejected(tc.reason, "")
			if reply := n.send(tc.raw, noReply); reply != nil {
				t.Fatalf("answered: % x", reply)
			}
			if got := s.rejected(tc.reason, ""); got != before+1 {
				t.Errorf("rejected{reason=%s} went from %v to %v", tc.reason, before, got)
			}
		})
	}
	req := papRequest(t, "wifi-secret", "alice", "alice-pw")
	checkReply(t, n.send(req, 10*time.Second), req, "wifi-secret")
}

func TestVerifyMessageAuthenticator(t *testing.T) {
	raw := papRequest(t, "s3cret", "u", "p")
	at := messageAuthenticator(raw)
	if at != len(raw)-16 {
		t.Fatalf("found at %d", at)
	}
	if !verifyMessageAuthenticator(raw, at, []byte("s3cret")) {
		t.Error("a valid Message-Authenticator refused")
	}
	if verifyMessageAuthenticator(raw, at, []byte("other")) {
		t.Error("accepted under another secret")
	}
	// Computed independently: HMAC-MD5 over the packet, attribute zeroed.
	zeroed := append([]byte(nil), raw...)
	copy(zeroed[at:], make([]byte, 16))
	mac := hmac.New(md5.New, []byte("s3cret"))
	mac.Write(zeroed)
	if !bytes.Equal(mac.Sum(nil), raw[at:]) {
		t.Error("the test's own signing differs from RFC 3579")
	}
}
