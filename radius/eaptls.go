package radius

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"

	"layeh.com/radius"

	"github.com/akoutpost/akoutpost/outpost/flow"
)

// EAP-TLS (RFC 5216): the client proves itself with a certificate in the
// TLS handshake, and nothing runs inside the tunnel. The outpost does
// not judge the certificate: as authentik's outpost does, it runs the
// provider's flow with the certificate in X-Authentik-Outpost-Certificate
// and the EAP identity as the username, and the flow's Mutual TLS stage
// checks it against its certificate authorities and names the user. The
// handshake proves the client holds the certificate's key
// (CertificateVerify), which the core cannot see for itself.
//
// The conversation, after the client's Nak for EAP-TLS:
//
//	server                         client
//	EAP-TLS Start             ->
//	                          <-   ClientHello
//	ServerHello ... Done      ->   (fragmented; CertificateRequest in it)
//	                          <-   Certificate ... Finished (fragmented)
//	  the flow and the access check run here
//	ChangeCipherSpec Finished ->   (or EAP-Failure)
//	                          <-   an empty EAP-TLS response
//	EAP-Success, MS-MPPE keys ->

// rejectEAPNoClientCert: the client finished the EAP-TLS handshake
// without a certificate.
const rejectEAPNoClientCert = "eap_no_client_certificate"

// tlsAuthState is where an EAP-TLS conversation is.
type tlsAuthState struct {
	done  bool // the flow ran, and passed
	attrs radius.Attributes
}

// serverConfig is cfg with the certificate request decided per
// handshake: crypto/tls asks for the configuration when the ClientHello
// arrives, after the EAP method is settled.
func (t *tunnel) serverConfig(cfg *tls.Config) *tls.Config {
	withCert := cfg.Clone()
	// Request, not require: a handshake without a certificate completes
	// and is rejected with its own reason, instead of a TLS alert.
	withCert.ClientAuth = tls.RequestClientCert
	out := cfg.Clone()
	out.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		if t.clientCert.Load() {
			return withCert, nil
		}
		return nil, nil
	}
	return out
}

// requestClientCertificate decides whether the handshake asks the
// client for a certificate; it must be called before the ClientHello is
// fed.
func (t *tunnel) requestClientCertificate(on bool) { t.clientCert.Store(on) }

// peerCertificates is the chain the client presented, leaf first; nil
// before the handshake completes.
func (t *tunnel) peerCertificates() []*x509.Certificate {
	if !t.established() {
		return nil
	}
	return t.tc.ConnectionState().PeerCertificates
}

// tlsAuthenticate runs when an EAP-TLS handshake completes: the flow with
// the client's certificate, then the access check. ok is false with the
// reject to send when the client may not in.
func (p *Provider) tlsAuthenticate(ctx context.Context, req *request, sess *eapSession, log *slog.Logger) (r eapReply, ok bool) {
	certs := sess.tunnel.peerCertificates()
	if len(certs) == 0 {
		log.Info("EAP-TLS without a client certificate", "identity", truncate(sess.outer, 64))
		return eapReply{code: radius.CodeAccessReject, reason: rejectEAPNoClientCert}, false
	}
	log = log.With("identity", truncate(sess.outer, 64), "subject", truncate(certs[0].Subject.String(), 256))
	attrs, reason := p.runFlow(ctx, req, flow.Request{Username: sess.outer, ClientCertificate: certs[0]}, log)
	if reason != "" {
		return eapReply{code: radius.CodeAccessReject, reason: reason}, false
	}
	sess.tlsAuth = tlsAuthState{done: true, attrs: attrs}
	return eapReply{}, true
}

// tlsStep answers the client's acknowledgement of our last flight: the
// handshake is over and the flow passed, so EAP-Success with the keys
// (RFC 5216 2.3: the MSK is the first 64 bytes of the TLS-PRF with the
// label "client EAP encryption", as for PEAP).
func (p *Provider) tlsStep(req *request, sess *eapSession, app []byte, log *slog.Logger) eapReply {
	if !sess.tlsAuth.done || len(app) > 0 {
		// Application data has no place in EAP-TLS.
		log.Debug("EAP-TLS data after the handshake", "bytes", len(app))
		return eapReply{code: radius.CodeAccessReject, reason: rejectEAPMalformed}
	}
	return p.succeed(req, sess, "client EAP encryption", sess.id, sess.tlsAuth.attrs)
}
