package radius

import (
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/akoutpost/akoutpost/outpost/outposttest"
)

const noReply = 300 * time.Millisecond

func TestPAP(t *testing.T) {
	s := startStack(t, testBlueprint, Config{})
	if err := s.core.SetRadiusAttributes("wifi", outposttest.RadiusAttribute{Type: 25, Value: []byte("wifi-class")},
		outposttest.RadiusAttribute{Type: 18, Value: []byte("welcome")}); err != nil {
		t.Fatal(err)
	}
	if err := s.core.SetRadiusAttributes("lab", outposttest.RadiusAttribute{Type: 25, Value: []byte("lab-class")}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, secret, user, password string
		accept                       bool
		class, reason, app           string
	}{
		// The client's address is in both providers' networks; the
		// secret that signed the request picks the provider.
		{"wifi accepts alice", "wifi-secret", "alice", "alice-pw", true, "wifi-class", "", "wifi"},
		{"lab accepts alice", "lab-secret", "alice", "alice-pw", true, "lab-class", "", "lab"},
		{"wrong password", "wifi-secret", "alice", "wrong", false, "", rejectInvalidCredentials, "wifi"},
		{"unknown user", "wifi-secret", "mallory", "x", false, "", rejectInvalidCredentials, "wifi"},
		{"bob may not use wifi", "wifi-secret", "bob", "bob-pw", false, "", rejectAccessDenied, "wifi"},
		{"bob may use the lab", "lab-secret", "bob", "bob-pw", true, "lab-class", "", "lab"},
		{"a password of 17 bytes", "lab-secret", "alice", "alice-pw;12345678", false, "", rejectInvalidCredentials, "lab"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := 0.0
			if tc.reason != "" {
				before = s.rejected(tc.reason, tc.app)
			}
			req := papRequest(t, tc.secret, tc.user, tc.password)
			reply := checkReply(t, s.nas(t).send(req, 10*time.Second), req, tc.secret)
			if want := map[bool]radius.Code{true: radius.CodeAccessAccept, false: radius.CodeAccessReject}[tc.accept]; reply.Code != want {
				t.Fatalf("reply %v, want %v", reply.Code, want)
			}
			if got := rfc2865.Class_GetString(reply); got != tc.class {
				t.Errorf("Class %q, want %q", got, tc.class)
			}
			if tc.accept && tc.app == "wifi" && rfc2865.ReplyMessage_GetString(reply) != "welcome" {
				t.Errorf("Reply-Message %q", rfc2865.ReplyMessage_GetString(reply))
			}
			if tc.reason != "" {
				if got := s.rejected(tc.reason, tc.app); got != before+1 {
					t.Errorf("rejected{reason=%s,app=%s} went from %v to %v", tc.reason, tc.app, before, got)
				}
			}
		})
	}
}

// Proxy-State attributes come back in the reply, in order (RFC 2865 5.33),
// so a proxy between NAS and outpost can match replies.
func TestProxyStateEchoed(t *testing.T) {
	s := startStack(t, testBlueprint, Config{})
	pkt := radius.New(radius.CodeAccessRequest, []byte("lab-secret"))
	rfc2865.UserName_SetString(pkt, "alice")
	rfc2865.UserPassword_SetString(pkt, "alice-pw")
	pkt.Add(attrProxyState, []byte("first"))
	pkt.Add(attrProxyState, []byte("second"))
	req := signRequest(t, pkt, []byte("lab-secret"))
	reply := checkReply(t, s.nas(t).send(req, 10*time.Second), req, "lab-secret")
	var got []string
	for _, avp := range reply.Attributes {
		if avp.Type == attrProxyState {
			got = append(got, string(avp.Attribute))
		}
	}
	if reply.Code != radius.CodeAccessAccept || len(got) != 2 || got[0] != "first" || got[1] != "second" {
		t.Errorf("reply %v with Proxy-State %q", reply.Code, got)
	}
}

// MFA: with mfa_support, "password;CODE" answers the authenticator stage.
func TestMFA(t *testing.T) {
	s := startStack(t, testBlueprint, Config{})
	n := s.nas(t)
	req := papRequest(t, "wifi-secret", "carol", "carol-pw")
	if reply := checkReply(t, n.send(req, 10*time.Second), req, "wifi-secret"); reply.Code != radius.CodeAccessReject {
		t.Errorf("without a code: %v", reply.Code)
	}
	req = papRequest(t, "wifi-secret", "carol", "carol-pw;000000")
	if reply := checkReply(t, n.send(req, 10*time.Second), req, "wifi-secret"); reply.Code != radius.CodeAccessReject {
		t.Errorf("with a wrong code: %v", reply.Code)
	}
	code, err := s.core.TOTPCode("carol", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s.core.ResetRequests()
	req = papRequest(t, "wifi-secret", "carol", "carol-pw;"+code)
	if reply := checkReply(t, n.send(req, 10*time.Second), req, "wifi-secret"); reply.Code != radius.CodeAccessAccept {
		t.Errorf("with the current code: %v", reply.Code)
	}
	// Identification with the password, the password stage, the
	// authenticator stage, the access check: the code needs a round
	// trip of its own.
	if n := s.core.RequestCount("/api/v3/"); n != 4 {
		for _, r := range s.core.Requests() {
			t.Log(r.Method, r.Path)
		}
		t.Errorf("%d core requests for an authentication with MFA, want 4", n)
	}
}

// An authentication costs the core at most 3 requests: the flow's
// identification (with the password), its password stage when the core
// asks for it separately, and the access check.
func TestCoreRequestsPerAuthentication(t *testing.T) {
	s := startStack(t, testBlueprint, Config{})
	n := s.nas(t)
	for i := range 3 {
		s.core.ResetRequests()
		req := papRequest(t, "wifi-secret", "alice", "alice-pw")
		if reply := checkReply(t, n.send(req, 10*time.Second), req, "wifi-secret"); reply.Code != radius.CodeAccessAccept {
			t.Fatalf("round %d: %v", i, reply.Code)
		}
		if got := s.core.RequestCount("/api/v3/"); got > 3 || got < 2 {
			t.Errorf("round %d: %d core requests, want 2 or 3", i, got)
		}
	}
}

// CHAP and requests without a password are refused without asking the
// core.
func TestUnsupportedMethods(t *testing.T) {
	s := startStack(t, testBlueprint, Config{})
	n := s.nas(t)
	chap := radius.New(radius.CodeAccessRequest, []byte("lab-secret"))
	rfc2865.UserName_SetString(chap, "alice")
	chap.Add(attrCHAPPassword, make([]byte, 17))
	nopass := radius.New(radius.CodeAccessRequest, []byte("lab-secret"))
	rfc2865.UserName_SetString(nopass, "alice")
	for name, pkt := range map[string]*radius.Packet{"CHAP": chap, "no password": nopass} {
		t.Run(name, func(t *testing.T) {
			s.core.ResetRequests()
			before := s.rejected(rejectUnsupportedMethod, "lab")
			req := signRequest(t, pkt, []byte("lab-secret"))
			if reply := checkReply(t, n.send(req, 10*time.Second), req, "lab-secret"); reply.Code != radius.CodeAccessReject {
				t.Errorf("reply %v", reply.Code)
			}
			if got := s.rejected(rejectUnsupportedMethod, "lab"); got != before+1 {
				t.Errorf("unsupported_method went from %v to %v", before, got)
			}
			if c := s.core.RequestCount("/api/v3/flows/"); c != 0 {
				t.Errorf("%d flow requests", c)
			}
		})
	}
}

// When the core fails, the NAS gets Access-Reject (as from authentik) and
// the reason says it was the core, not the password; the next request
// after the core recovers is accepted.
func TestCoreFailures(t *testing.T) {
	s := startStack(t, testBlueprint, Config{})
	n := s.nas(t)
	for _, tc := range []struct {
		name   string
		fault  outposttest.Fault
		reason string
	}{
		{"flow executor 503", outposttest.Fault{PathPrefix: "/api/v3/flows/", Status: 503}, rejectFlowError},
		{"flow executor drops", outposttest.Fault{PathPrefix: "/api/v3/flows/", Drop: true}, rejectFlowError},
		{"access check 500", outposttest.Fault{PathPrefix: "/api/v3/outposts/radius/1/", Status: 500}, rejectAccessCheckFail},
		{"access check malformed", outposttest.Fault{PathPrefix: "/api/v3/outposts/radius/1/", Malformed: true}, rejectAccessCheckFail},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.core.Fault(tc.fault)
			before := s.rejected(tc.reason, "wifi")
			req := papRequest(t, "wifi-secret", "alice", "alice-pw")
			if reply := checkReply(t, n.send(req, 20*time.Second), req, "wifi-secret"); reply.Code != radius.CodeAccessReject {
				t.Errorf("reply %v", reply.Code)
			}
			if got := s.rejected(tc.reason, "wifi"); got != before+1 {
				t.Errorf("rejected{reason=%s} went from %v to %v", tc.reason, before, got)
			}
			s.core.ClearFaults()
			req = papRequest(t, "wifi-secret", "alice", "alice-pw")
			if reply := checkReply(t, n.send(req, 20*time.Second), req, "wifi-secret"); reply.Code != radius.CodeAccessAccept {
				t.Errorf("after recovery: %v", reply.Code)
			}
		})
	}
}
