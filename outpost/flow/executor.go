package flow

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"time"

	"github.com/akoutpost/akoutpost/metrics"
)

// Challenge components, as the core names them.
const (
	StageIdentification        = "ak-stage-identification"
	StagePassword              = "ak-stage-password"
	StageAuthenticatorValidate = "ak-stage-authenticator-validate"
	StageUserLogin             = "ak-stage-user-login"
	StageAccessDenied          = "ak-stage-access-denied"
	StageRedirect              = "xak-flow-redirect"
)

// Headers the core reads from outposts running flows for a user.
const (
	// HeaderOutpostToken carries the outpost token, so the core knows the
	// flow runs on an outpost's behalf.
	HeaderOutpostToken = "X-authentik-outpost-token"
	// HeaderRemoteIP carries the end user's address; the core honours it
	// only for outpost tokens.
	HeaderRemoteIP = "X-authentik-remote-ip"
	// HeaderOutpostCertificate carries the client certificate the user
	// presented to the outpost (EAP-TLS), URL-escaped PEM, for the flow's
	// Mutual TLS stage. The core takes it only from an outpost whose
	// service account holds pass_outpost_certificate.
	HeaderOutpostCertificate = "X-Authentik-Outpost-Certificate"
	// SessionCookie is the cookie holding the user's session.
	SessionCookie = "authentik_session"
)

const (
	defaultMaxSteps = 10
	defaultTimeout  = 30 * time.Second
	maxBody         = 1 << 20
)

// Config configures an [Executor].
type Config struct {
	// BaseURL is the core's URL, such as https://authentik.example.com/;
	// the API is under BaseURL/api/v3/. Required.
	BaseURL *url.URL
	// Transport carries requests to the core (its TLS settings). Nil uses
	// a clone of http.DefaultTransport.
	Transport http.RoundTripper
	// Token is the outpost token, sent in [HeaderOutpostToken]. It never
	// appears in logs or errors.
	Token string
	// TokenFunc, when set instead of Token, is asked for the token on every
	// request, so a rotated token is used at once ([outpost.Client.Token]).
	TokenFunc func() string
	// UserAgent is sent on every request; empty sends Go's default.
	UserAgent string
	// Logger receives debug records of each step; nil discards.
	Logger *slog.Logger
	// Metrics receives flow timings under authentik's names; nil records
	// none.
	Metrics *metrics.Flow
	// MaxSteps bounds the challenges answered in one run (default 10), so
	// a looping flow cannot hold a bind forever.
	MaxSteps int
	// Timeout bounds every HTTP request (default 30s).
	Timeout time.Duration
}

// Executor runs flows. It is safe for concurrent use; each run gets its own
// cookie jar.
type Executor struct {
	cfg   Config
	log   *slog.Logger
	token func() string
}

// New validates cfg and returns an Executor. It does no I/O.
func New(cfg Config) (*Executor, error) {
	if cfg.BaseURL == nil || cfg.BaseURL.Host == "" && cfg.BaseURL.Scheme != "unix" {
		return nil, errors.New("flow: BaseURL is required")
	}
	if cfg.Transport == nil {
		cfg.Transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	if cfg.MaxSteps <= 0 {
		cfg.MaxSteps = defaultMaxSteps
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultTimeout
	}
	token := cfg.TokenFunc
	if token == nil {
		token = func() string { return cfg.Token }
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Executor{cfg: cfg, log: log, token: token}, nil
}

// Request is what one run needs.
type Request struct {
	// Flow is the flow's slug.
	Flow string
	// Username answers the identification stage's uid_field.
	Username string
	// Password answers the password stage; with MFA it may end in
	// ";CODE" (see [SplitPassword]).
	Password string
	// MFA makes a trailing ";123456" (or an 8-character static token) the
	// authenticator code instead of part of the password.
	MFA bool
	// RemoteIP is the end user's address, passed in [HeaderRemoteIP].
	RemoteIP string
	// Query is the query string the flow sees as the plan's context, such
	// as goauthentik.io/outpost/ldap=true.
	Query url.Values
	// ClientCertificate, when set, is sent in [HeaderOutpostCertificate]
	// on every request of the run: the certificate of a client that proved
	// it holds the key (a TLS handshake), for the flow's Mutual TLS stage
	// to check against its certificate authorities and map to a user.
	ClientCertificate *x509.Certificate
}

// Outcome is how a run ended. The zero value is [OutcomeError], so a
// forgotten assignment fails closed.
type Outcome int

const (
	// OutcomeError: the core could not answer; the run's error says why.
	OutcomeError Outcome = iota
	// OutcomeSuccess: the flow redirected, the user is logged in.
	OutcomeSuccess
	// OutcomeRejected: a stage rejected the answers (wrong password or code,
	// unknown user, a stage the executor cannot answer).
	OutcomeRejected
	// OutcomeDenied: the flow ended on the access-denied stage.
	OutcomeDenied
)

func (o Outcome) String() string {
	switch o {
	case OutcomeSuccess:
		return "success"
	case OutcomeRejected:
		return "rejected"
	case OutcomeDenied:
		return "denied"
	}
	return "error"
}

// Result describes a finished run.
type Result struct {
	Outcome Outcome
	// Stage is the last component the core sent.
	Stage string
	// Reason explains a rejection or denial in words safe to log (the
	// core's message, never the password).
	Reason string
	// Session is the user's session after a successful run, nil otherwise.
	Session *Session
	// User is the username the core named as the flow's pending user
	// (the password and authenticator stages show it), empty when no
	// challenge named one. After a successful run it is the user the
	// session belongs to, which spares a caller that already knows that
	// user a request to /core/users/me/.
	User string
}

// Error reports that the core could not answer a request.
type Error struct {
	// Op is what was attempted, e.g. "GET /flows/executor/login/".
	Op string
	// StatusCode is the HTTP status, 0 when no response arrived.
	StatusCode int
	Err        error
}

func (e *Error) Error() string {
	if e.StatusCode != 0 {
		return fmt.Sprintf("flow: %s: core answered HTTP %d", e.Op, e.StatusCode)
	}
	return fmt.Sprintf("flow: %s: %v", e.Op, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Busy reports whether the core said it is overloaded (429, 503), as
// opposed to unreachable or broken.
func (e *Error) Busy() bool {
	return e.StatusCode == http.StatusTooManyRequests || e.StatusCode == http.StatusServiceUnavailable
}

// Unavailable reports whether no answer arrived at all or the core failed
// (transport error, 5xx other than 503).
func (e *Error) Unavailable() bool {
	return e.StatusCode == 0 || e.StatusCode >= 500 && !e.Busy()
}

// challenge is the part of every challenge the executor reads.
type challenge struct {
	Component      string                   `json:"component"`
	PendingUser    string                   `json:"pending_user"`
	ResponseErrors map[string][]errorDetail `json:"response_errors"`
	ErrorMessage   string                   `json:"error_message"`
	To             string                   `json:"to"`
	// DeviceChallenges is kept raw so the chosen one goes back unchanged.
	DeviceChallenges []json.RawMessage `json:"device_challenges"`
}

type errorDetail struct {
	String string `json:"string"`
	Code   string `json:"code"`
}

// Run executes the flow req.Flow. A nil error comes with a Result whose
// Outcome is not OutcomeError; an error (always an [*Error] or the context's
// error) means the core's verdict is unknown.
func (e *Executor) Run(ctx context.Context, req Request) (Result, error) {
	s, err := e.newSession(req.RemoteIP, req.ClientCertificate)
	if err != nil {
		return Result{}, err
	}
	password, code := SplitPassword(req.Password, req.MFA)
	inner := req.Query.Encode()
	q := url.Values{"query": {inner}}
	path := "/flows/executor/" + url.PathEscape(req.Flow) + "/"
	log := e.log.With("flow", req.Flow)

	// authentik's executor takes a POST that starts a flow as the answer
	// to its first stage, and the flows that binds and logins run begin
	// with identification: answering it at once saves a round trip per
	// bind. A core that wants the GET first refuses the POST (4xx), and
	// a flow that begins with another stage answers with that stage's
	// challenge, complaining about the answer it did not ask for.
	start := time.Now()
	var ch challenge
	first := map[string]any{"component": StageIdentification, "uid_field": req.Username, "password": password}
	err = s.do(ctx, http.MethodPost, path, q, first, &ch)
	var fe *Error
	switch {
	case err == nil:
		e.observe(false, StageIdentification, req.Flow, start)
		if ch.Component != StageIdentification {
			ch.ResponseErrors = nil
		}
	case errors.As(err, &fe) && fe.StatusCode >= 400 && fe.StatusCode < 500 && !fe.Busy():
		start = time.Now()
		ch = challenge{}
		if err := s.do(ctx, http.MethodGet, path, q, nil, &ch); err != nil {
			return Result{}, err
		}
		e.observe(true, ch.Component, req.Flow, start)
	default:
		return Result{}, err
	}
	pending := ""
	for step := 0; ; step++ {
		log.Debug("flow challenge", "component", ch.Component, "step", step)
		if ch.PendingUser != "" {
			pending = ch.PendingUser
		}
		if reason := firstError(ch.ResponseErrors); reason != "" {
			return Result{Outcome: OutcomeRejected, Stage: ch.Component, Reason: reason}, nil
		}
		var answer any
		switch ch.Component {
		case StageRedirect:
			return Result{Outcome: OutcomeSuccess, Stage: ch.Component, Session: s, User: pending}, nil
		case StageAccessDenied:
			reason := ch.ErrorMessage
			if reason == "" {
				reason = "access denied"
			}
			return Result{Outcome: OutcomeDenied, Stage: ch.Component, Reason: reason}, nil
		case StageIdentification:
			answer = map[string]any{"component": ch.Component, "uid_field": req.Username, "password": password}
		case StagePassword:
			answer = map[string]any{"component": ch.Component, "password": password}
		case StageUserLogin:
			answer = map[string]any{"component": ch.Component, "remember_me": true}
		case StageAuthenticatorValidate:
			dev := pickDevice(ch.DeviceChallenges)
			if dev == nil || code == "" {
				return Result{Outcome: OutcomeRejected, Stage: ch.Component,
					Reason: "no code-based authenticator (totp, static) or no code given"}, nil
			}
			answer = map[string]any{"component": ch.Component, "selected_challenge": dev, "code": code}
		default:
			return Result{Outcome: OutcomeRejected, Stage: ch.Component,
				Reason: fmt.Sprintf("unsupported challenge %q", truncate(ch.Component, 64))}, nil
		}
		if step >= e.cfg.MaxSteps {
			return Result{Outcome: OutcomeRejected, Stage: ch.Component, Reason: "too many flow stages"}, nil
		}
		start = time.Now()
		answered := ch.Component
		ch = challenge{}
		if err := s.do(ctx, http.MethodPost, path, q, answer, &ch); err != nil {
			return Result{}, err
		}
		e.observe(false, answered, req.Flow, start)
	}
}

func (e *Executor) observe(get bool, stage, flow string, start time.Time) {
	if e.cfg.Metrics == nil {
		return
	}
	h := e.cfg.Metrics.PostSeconds
	if get {
		h = e.cfg.Metrics.GetSeconds
	}
	h.WithLabelValues(stageLabel(stage), flow).Observe(time.Since(start).Seconds())
}

// pickDevice returns the first device challenge answerable with a code.
func pickDevice(devices []json.RawMessage) json.RawMessage {
	for _, d := range devices {
		var dc struct {
			DeviceClass string `json:"device_class"`
		}
		if json.Unmarshal(d, &dc) != nil {
			continue
		}
		if dc.DeviceClass == "totp" || dc.DeviceClass == "static" {
			return d
		}
	}
	return nil
}

func firstError(errs map[string][]errorDetail) string {
	for field, list := range errs {
		for _, d := range list {
			return fmt.Sprintf("flow error %s: %s", truncate(field, 64), truncate(d.String, 200))
		}
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// SplitPassword separates an authenticator code from a password. Without
// mfa the whole string is both the password and the code, so flows whose
// only factor is an authenticator still work. With mfa, a suffix after the
// last ";" that is six digits (TOTP) or eight letters and digits (a static
// token) is the code; anything else leaves the password whole and no code.
func SplitPassword(password string, mfa bool) (pass, code string) {
	if !mfa {
		return password, password
	}
	i := strings.LastIndexByte(password, ';')
	if i < 0 {
		return password, ""
	}
	suffix := password[i+1:]
	switch {
	case len(suffix) == 6 && allOf(suffix, isDigit):
	case len(suffix) == 8 && allOf(suffix, isAlnum):
	default:
		return password, ""
	}
	return password[:i], suffix
}

func allOf(s string, f func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !f(s[i]) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlnum(c byte) bool { return isDigit(c) || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// newSession returns a session with an empty cookie jar.
func (e *Executor) newSession(remoteIP string, cert *x509.Certificate) (*Session, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, fmt.Errorf("flow: creating cookie jar: %w", err)
	}
	s := &Session{base: e.cfg.BaseURL}
	s.client = &http.Client{
		Jar:     jar,
		Timeout: e.cfg.Timeout,
		Transport: &sessionTransport{
			next: e.cfg.Transport, token: e.token, userAgent: e.cfg.UserAgent,
			remoteIP: remoteIP, certificate: certificateHeader(cert), session: s,
		},
		// The executor speaks JSON; a redirect means something else
		// answered (a login page, a proxy) and is an error, not a flow step.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return s, nil
}

// certificateHeader is cert as authentik's outposts pass it: PEM, escaped
// as a query value (the core unescapes it with unquote_plus); "" for nil.
func certificateHeader(cert *x509.Certificate) string {
	if cert == nil {
		return ""
	}
	return url.QueryEscape(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})))
}

// apiURL joins the core URL, /api/v3 and path.
func apiURL(base *url.URL, path string, q url.Values) string {
	u := *base
	u.Path = strings.TrimSuffix(u.Path, "/") + "/api/v3" + path
	u.RawPath = ""
	u.RawQuery = q.Encode()
	return u.String()
}

// do sends one request and decodes a 2xx JSON answer into out.
func (s *Session) do(ctx context.Context, method, path string, q url.Values, body, out any) error {
	op := method + " " + path
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return &Error{Op: op, Err: fmt.Errorf("encoding request: %w", err)}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, apiURL(s.base, path, q), rd)
	if err != nil {
		return &Error{Op: op, Err: err}
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &Error{Op: op, Err: redact(err)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return &Error{Op: op, Err: fmt.Errorf("reading answer: %w", err)}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &Error{Op: op, StatusCode: resp.StatusCode}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return &Error{Op: op, Err: fmt.Errorf("decoding answer: %w", err)}
		}
	}
	return nil
}

// redact drops the URL from transport errors: it holds the flow's query,
// harmless today, but errors should not grow secrets by accident.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// stageLabel bounds the "stage" label of the flow timings: a component the
// executor does not know (a custom stage, or garbage from a misbehaving
// core) is folded into "other".
func stageLabel(component string) string {
	switch component {
	case StageIdentification, StagePassword, StageAuthenticatorValidate, StageUserLogin,
		StageAccessDenied, StageRedirect, "ak-stage-flow-error", "ak-stage-captcha",
		"ak-stage-consent", "ak-stage-prompt":
		return component
	}
	return "other"
}
