package radius

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"strings"
	"sync"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/vendors/microsoft"

	"github.com/akoutpost/akoutpost/outpost/outposttest"
)

// eapTLSBlueprint is eapBlueprint with a third provider, certs, whose
// flow cert-login is a Mutual TLS stage (the user whose username is the
// certificate's common name, issued by ca) and user login; the radius
// outpost's service account may pass certificates to the stage. The
// certs application lets alice and dave (who is deactivated) in, not bob.
func eapTLSBlueprint(ca *outposttest.CA) string {
	caPEM := strings.ReplaceAll(strings.TrimSpace(ca.CertPEM), "\n", "\n        ")
	return eapBlueprint + `
  - model: authentik_core.user
    id: dave
    identifiers: {username: dave}
    attrs: {is_active: false}
  - model: authentik_crypto.certificatekeypair
    id: client-ca
    identifiers: {name: client-ca}
    attrs:
      certificate_data: |
        ` + caPEM + `
  - model: authentik_flows.flow
    id: cert-login
    identifiers: {slug: cert-login}
    attrs: {name: Certificate login, designation: authentication}
  - model: authentik_providers_radius.radiusprovider
    id: certs
    identifiers: {name: certs}
    attrs: {shared_secret: certs-secret, client_networks: "127.0.0.0/8", authorization_flow: !KeyOf cert-login,
      certificate: !KeyOf radius-cert}
  - model: authentik_core.application
    id: certs-app
    identifiers: {slug: certs}
    attrs: {name: Certificates, provider: !KeyOf certs}
  - model: authentik_policies.policybinding
    identifiers: {target: !KeyOf certs-app, user: !KeyOf alice, order: 0}
  - model: authentik_policies.policybinding
    identifiers: {target: !KeyOf certs-app, user: !KeyOf dave, order: 1}
  - model: authentik_outposts.outpost
    identifiers: {name: radius}
    attrs: {type: radius, providers: [!KeyOf wifi, !KeyOf lab, !KeyOf certs]}
  - model: authentik_stages_mtls.mutualtlsstage
    id: mtls
    identifiers: {name: radius-mtls}
    attrs: {mode: required, certificate_authorities: [!KeyOf client-ca], cert_attribute: common_name, user_attribute: username}
    permissions:
      - permission: authentik_stages_mtls.pass_outpost_certificate
        user: !Find [authentik_core.user, [name, Outpost radius Service-Account]]
  - model: authentik_flows.flowstagebinding
    identifiers: {target: !KeyOf cert-login, stage: !KeyOf mtls, order: 10}
  - model: authentik_flows.flowstagebinding
    identifiers: {target: !KeyOf cert-login, stage: !Find [authentik_stages_user_login.userloginstage, [name, default-authentication-login]], order: 20}
`
}

// eapTLSClient is a supplicant written with crypto/tls: the client end
// of a TLS session whose records it carries in EAP responses, through a
// NAS socket, to the certs provider of eapTLSBlueprint.
type eapTLSClient struct {
	t      *testing.T
	n      *nas
	secret string
	state  []byte
	last   eapPacket // the server's last request
	tun    *tunnel
	wg     sync.WaitGroup
	// askedForCert records whether the server sent a CertificateRequest.
	askedForCert bool
}

// exchange sends msg answering the last request and returns the reply
// and the request it answered.
func (c *eapTLSClient) exchange(msg eapPacket) (*radius.Packet, *radius.Packet) {
	c.t.Helper()
	raw := eapAccessRequest(c.t, c.secret, msg, c.state)
	reply := checkReply(c.t, c.n.send(raw, 10*time.Second), raw, c.secret)
	if reply.Code == radius.CodeAccessChallenge {
		c.last, c.state = replyEAP(c.t, reply)
	}
	req, err := radius.Parse(raw, []byte(c.secret))
	if err != nil {
		c.t.Fatal(err)
	}
	return reply, req
}

// respond answers the last request with a TLS-based response of method.
func (c *eapTLSClient) respond(method byte, data []byte) (*radius.Packet, *radius.Packet) {
	return c.exchange(eapPacket{Code: eapResponse, ID: c.last.ID, Type: method, Data: data})
}

// run goes through a conversation of method (EAP-TLS or PEAP) with cfg
// until the server answers other than with a challenge, or, for PEAP,
// until the handshake completes. It returns the last reply and the
// request it answered.
func (c *eapTLSClient) run(method byte, cfg *tls.Config) (*radius.Packet, *radius.Packet) {
	t := c.t
	t.Helper()
	reply, req := c.exchange(eapPacket{Code: eapResponse, ID: 1, Type: eapTypeIdentity, Data: []byte("alice")})
	if c.last.Type != method {
		reply, req = c.respond(eapTypeNak, []byte{method})
	}
	if reply.Code != radius.CodeAccessChallenge || c.last.Type != method || c.last.Data[0]&tlsFlagStart == 0 {
		t.Fatalf("no start of method %d: %v %+v", method, reply.Code, c.last)
	}
	cfg = cfg.Clone()
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		c.askedForCert = true
		if len(cfg.Certificates) > 0 {
			return &cfg.Certificates[0], nil
		}
		return &tls.Certificate{}, nil
	}
	c.tun = &tunnel{}
	c.tun.cond = sync.NewCond(&c.tun.mu)
	c.tun.tc = tls.Client(tunnelConn{c.tun}, cfg)
	c.wg.Go(c.tun.run)
	t.Cleanup(func() { c.tun.close(); c.wg.Wait() })
	out, err := c.tun.feed(nil)
	for {
		if err != nil {
			t.Fatalf("client TLS: %v", err)
		}
		if len(out) == 0 {
			if method != eapTypeTLS {
				return reply, req
			}
			// Our last flight is acknowledged... or it is our turn
			// to acknowledge the server's.
			return c.respond(method, []byte{0})
		}
		// Our flight, in fragments of 1000 bytes with the length
		// first; the server acknowledges each but the last.
		for i := 0; i < len(out); i += maxFragment {
			frag := out[i:min(i+maxFragment, len(out))]
			flags := byte(0)
			var data []byte
			if len(out) > maxFragment {
				if i == 0 {
					flags |= tlsFlagLength
				}
				if i+maxFragment < len(out) {
					flags |= tlsFlagMore
				}
			}
			data = append(data, flags)
			if flags&tlsFlagLength != 0 {
				data = binary.BigEndian.AppendUint32(data, uint32(len(out)))
			}
			reply, req = c.respond(method, append(data, frag...))
		}
		if reply.Code != radius.CodeAccessChallenge {
			return reply, req
		}
		// The server's flight, acknowledging its fragments.
		var in []byte
		for {
			flags, body := c.last.Data[0], c.last.Data[1:]
			if flags&tlsFlagLength != 0 {
				body = body[4:]
			}
			in = append(in, body...)
			if flags&tlsFlagMore == 0 {
				break
			}
			if reply, req = c.respond(method, []byte{0}); reply.Code != radius.CodeAccessChallenge {
				return reply, req
			}
		}
		out, err = c.tun.feed(in)
	}
}

// clientCAs makes the authority the Mutual TLS stage trusts and another.
func clientCAs(t *testing.T) (ca, other *outposttest.CA) {
	t.Helper()
	ca, err := outposttest.NewCA("client CA")
	if err != nil {
		t.Fatal(err)
	}
	if other, err = outposttest.NewCA("another CA"); err != nil {
		t.Fatal(err)
	}
	return ca, other
}

func TestEAPTLSConversation(t *testing.T) {
	ca, other := clientCAs(t)
	s := startStack(t, eapTLSBlueprint(ca), Config{})
	waitFor(t, "the certificates", func() bool { st := s.p.state.Load(); return st != nil && len(st.certs) == 2 })
	serverPEM, _, err := s.core.CertificatePEM("radius-cert")
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM([]byte(serverPEM))
	clientConfig := func(c *outposttest.CA, commonName string) *tls.Config {
		cfg := &tls.Config{RootCAs: roots, ServerName: "localhost", MaxVersion: tls.VersionTLS12}
		if c != nil {
			certPEM, keyPEM, err := c.Issue(commonName, "")
			if err != nil {
				t.Fatal(err)
			}
			pair, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
			if err != nil {
				t.Fatal(err)
			}
			cfg.Certificates = []tls.Certificate{pair}
		}
		return cfg
	}
	client := func(secret string) *eapTLSClient {
		return &eapTLSClient{t: t, n: s.nas(t), secret: secret}
	}

	t.Run("valid certificate", func(t *testing.T) {
		s.core.ResetRequests()
		c := client("certs-secret")
		reply, req := c.run(eapTypeTLS, clientConfig(ca, "alice"))
		if reply.Code != radius.CodeAccessAccept {
			t.Fatalf("reply %v", reply.Code)
		}
		if msg, _ := replyEAP(t, reply); msg.Code != eapSuccess {
			t.Errorf("EAP code %d, want success", msg.Code)
		}
		if !c.askedForCert {
			t.Error("the server did not ask for a certificate")
		}
		// RFC 5216 2.3: the MSK is the first 64 bytes of the TLS-PRF of
		// "client EAP encryption"; the NAS gets it as the MPPE keys.
		cs := c.tun.tc.ConnectionState()
		msk, err := cs.ExportKeyingMaterial("client EAP encryption", nil, 64)
		if err != nil {
			t.Fatal(err)
		}
		if got := microsoft.MSMPPERecvKey_Get(reply, req); !bytes.Equal(got, msk[:32]) {
			t.Errorf("MS-MPPE-Recv-Key % x, want % x", got, msk[:32])
		}
		if got := microsoft.MSMPPESendKey_Get(reply, req); !bytes.Equal(got, msk[32:64]) {
			t.Errorf("MS-MPPE-Send-Key % x, want % x", got, msk[32:64])
		}
		if got := s.core.RequestCount("/api/v3/"); got != 2 {
			t.Errorf("%d core requests, want 2 (the flow, the access check)", got)
		}
	})

	for _, tc := range []struct {
		name   string
		cfg    *tls.Config
		reason string
		flows  int
	}{
		{"no certificate", clientConfig(nil, ""), rejectEAPNoClientCert, 0},
		{"certificate of another CA", clientConfig(other, "alice"), rejectInvalidCredentials, 1},
		{"unknown user", clientConfig(ca, "mallory"), rejectInvalidCredentials, 1},
		{"deactivated user", clientConfig(ca, "dave"), rejectInvalidCredentials, 1},
		{"denied by policy", clientConfig(ca, "bob"), rejectAccessDenied, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.core.ResetRequests()
			before := s.rejected(tc.reason, "certs")
			reply, _ := client("certs-secret").run(eapTypeTLS, tc.cfg)
			if reply.Code != radius.CodeAccessReject {
				t.Fatalf("reply %v", reply.Code)
			}
			if msg, _ := replyEAP(t, reply); msg.Code != eapFailure {
				t.Errorf("EAP code %d, want failure", msg.Code)
			}
			if got := s.rejected(tc.reason, "certs"); got != before+1 {
				t.Errorf("rejected{reason=%s} went from %v to %v", tc.reason, before, got)
			}
			if got := s.core.RequestCount("/api/v3/flows/"); got != tc.flows {
				t.Errorf("%d flow requests, want %d", got, tc.flows)
			}
		})
	}

	// PEAP and EAP-TTLS never ask for a client certificate.
	for _, method := range []byte{eapTypePEAP, eapTypeTTLS} {
		c := client("wifi-secret")
		c.run(method, clientConfig(ca, "alice"))
		if c.askedForCert {
			t.Errorf("method %d asked for a client certificate", method)
		}
	}
}
