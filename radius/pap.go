package radius

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"

	"layeh.com/radius"

	"github.com/akoutpost/akoutpost/outpost/flow"
)

// Reasons an Access-Reject is sent, as metric labels: authentik's, and
// ours for what authentik does not check.
const (
	rejectInvalidCredentials = "invalid_credentials"
	rejectFlowError          = "flow_error"
	rejectAccessCheckFail    = "access_check_fail"
	rejectAccessDenied       = "access_denied"
	rejectAttributeDecode    = "attribute_decode_failed"
	rejectAttributeParse     = "attribute_parse_failed"
	rejectUnsupportedMethod  = "unsupported_method"
	rejectMalformedRequest   = "malformed_request"
	rejectInternal           = "internal_error"
)

// checkAccess is a RadiusCheckAccess.
type checkAccess struct {
	Attributes *string `json:"attributes"`
	Access     struct {
		Passing  bool     `json:"passing"`
		Messages []string `json:"messages"`
	} `json:"access"`
}

// answer authenticates one request and encodes the reply; nil means no
// reply is to be sent.
func (p *Provider) answer(ctx context.Context, req *request) (reply []byte) {
	l := p.deps
	start := p.cfg.Now()
	app := req.cfg.AppSlug
	log := p.logger().With("client", req.from.String(), "app", app)
	defer func() {
		if r := recover(); r != nil {
			log.Error("answering a RADIUS request panicked", "panic", fmt.Sprint(r))
			reply = p.rejectReply(req, rejectInternal, nil)
		}
		l.metrics.RequestDuration.WithLabelValues(req.st.outpostName, app).Observe(p.cfg.Now().Sub(start).Seconds())
	}()
	rctx, cancel := context.WithTimeout(ctx, p.cfg.RequestTimeout)
	defer cancel()
	var (
		code   radius.Code
		attrs  radius.Attributes
		reason string
	)
	if _, eap := req.packet.Lookup(attrEAPMessage); eap {
		code, attrs, reason = p.answerEAP(rctx, req, log)
	} else {
		code = radius.CodeAccessAccept
		attrs, reason = p.authenticate(rctx, req, log)
	}
	if ctx.Err() != nil {
		// Shutting down past the drain timeout: no verdict was reached,
		// and a reject would tell the NAS the password is wrong. Without
		// an answer it retries, or asks another server.
		return nil
	}
	if reason != "" {
		return p.rejectReply(req, reason, attrs)
	}
	out, err := encodeReply(req.packet, code, attrs)
	if err != nil {
		// Too many attributes from the core for one packet.
		log.Warn("encoding the reply failed", "code", code.String(), "error", err)
		return p.rejectReply(req, rejectAttributeParse, nil)
	}
	return out
}

// rejectReply counts and encodes an Access-Reject carrying attrs (an
// EAP-Failure, or nothing).
func (p *Provider) rejectReply(req *request, reason string, attrs radius.Attributes) []byte {
	p.reject(req.st.outpostName, reason, req.cfg.AppSlug)
	out, err := encodeReply(req.packet, radius.CodeAccessReject, attrs)
	if err != nil {
		// Only Proxy-State is copied into a reject; a request has room
		// for no more than fits a reply.
		p.logger().Warn("encoding an Access-Reject failed", "error", err)
		return nil
	}
	return out
}

// authenticate runs PAP: User-Name and User-Password through the
// provider's flow, then the access check. It returns the attributes for
// the Access-Accept, or the reason to reject.
func (p *Provider) authenticate(ctx context.Context, req *request, log *slog.Logger) (radius.Attributes, string) {
	pkt := req.packet
	if _, ok := pkt.Lookup(attrCHAPPassword); ok {
		return nil, rejectUnsupportedMethod
	}
	user, hasUser := pkt.Lookup(attrUserName)
	enc, hasPassword := pkt.Lookup(attrUserPassword)
	if !hasPassword {
		return nil, rejectUnsupportedMethod
	}
	if !hasUser || len(user) == 0 {
		return nil, rejectMalformedRequest
	}
	password, err := radius.UserPassword(enc, pkt.Secret, pkt.Authenticator[:])
	if err != nil {
		return nil, rejectMalformedRequest
	}
	// RFC 2865 5.2: the password is padded with NULs to 16 bytes.
	for len(password) > 0 && password[len(password)-1] == 0 {
		password = password[:len(password)-1]
	}
	return p.verify(ctx, req, string(user), string(password), log)
}

// verify runs the provider's flow for username and password, then the
// access check. It returns the attributes for the Access-Accept, or the
// reason to reject.
func (p *Provider) verify(ctx context.Context, req *request, username, password string,
	log *slog.Logger) (radius.Attributes, string) {
	return p.runFlow(ctx, req, flow.Request{Username: username, Password: password, MFA: req.cfg.MFA}, log)
}

// runFlow runs the provider's flow with the credentials of fr (its flow,
// client address and query are filled in here), then the access check.
func (p *Provider) runFlow(ctx context.Context, req *request, fr flow.Request, log *slog.Logger) (radius.Attributes, string) {
	pkt := req.packet
	username := fr.Username
	l := p.deps
	fr.Flow, fr.RemoteIP = req.cfg.AuthFlow, req.key.src.Addr().String()
	fr.Query = url.Values{"goauthentik.io/outpost/radius": {"true"}}
	res, err := l.executor.Run(ctx, fr)
	if err != nil {
		log.Warn("running the authentication flow failed", "username", username, "error", err)
		return nil, rejectFlowError
	}
	switch res.Outcome {
	case flow.OutcomeSuccess:
	case flow.OutcomeRejected, flow.OutcomeDenied:
		log.Debug("authentication rejected by the flow", "username", username, "stage", res.Stage, "reason", res.Reason)
		return nil, rejectInvalidCredentials
	default:
		return nil, rejectFlowError
	}
	var access checkAccess
	path := "/outposts/radius/" + strconv.Itoa(req.cfg.PK) + "/check_access/"
	if err := res.Session.Get(ctx, path, url.Values{"app_slug": {req.cfg.AppSlug}}, &access); err != nil {
		log.Warn("checking access failed", "username", username, "error", err)
		return nil, rejectAccessCheckFail
	}
	if !access.Access.Passing {
		log.Info("access denied", "username", username)
		return nil, rejectAccessDenied
	}
	if access.Attributes == nil || *access.Attributes == "" {
		return nil, ""
	}
	attrs, reason := coreAttributes(*access.Attributes, pkt.Secret)
	if reason != "" {
		log.Warn("the core's RADIUS attributes are unusable", "username", username, "reason", reason)
	}
	return attrs, reason
}

// coreAttributes decodes the attributes of a check_access answer: a
// base64 RADIUS packet the core's property mappings built. Attributes this
// package sets itself, and passwords, are not copied into the reply.
func coreAttributes(b64 string, secret []byte) (radius.Attributes, string) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, rejectAttributeDecode
	}
	pkt, err := radius.Parse(raw, secret)
	if err != nil {
		return nil, rejectAttributeParse
	}
	var out radius.Attributes
	for _, avp := range pkt.Attributes {
		switch avp.Type {
		case attrMessageAuthenticator, attrUserPassword, attrProxyState, attrEAPMessage:
			continue
		}
		out = append(out, avp)
	}
	return out, ""
}
