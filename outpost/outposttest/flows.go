package outposttest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The flow executor: authentik's challenge/response API that the LDAP
// outpost (and authentik's own web UI) drives. Each session runs one flow
// plan at a time; an authentication flow runs the stages bound to it
// (stages.go): the default authentication flow has the stages
// identification, password, authenticator validation (skipped for users
// without a TOTP or static device) and user login.

// Challenge components.
const (
	componentIdentification = "ak-stage-identification"
	componentPassword       = "ak-stage-password"
	componentValidate       = "ak-stage-authenticator-validate"
	componentRedirect       = "xak-flow-redirect"
	componentAccessDenied   = "ak-stage-access-denied"
)

// maxPasswordFailures is when the password stage gives up, like
// authentik's failed_attempts_before_cancel default.
const maxPasswordFailures = 5

type flowPlan struct {
	mu       sync.Mutex // serialises executor requests of one session
	flow     *flow
	stages   []*stageBinding // an authentication flow's stages, as the plan started
	pos      int             // the current one in stages
	stage    string          // the component expected next
	uid      string          // what the identification stage was given
	user     *user           // nil for an unknown user (the flow pretends it exists)
	next     string
	failures int
	amr      []string
}

func (s *Server) handleExecutor(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	f := s.m.flowBySlug(r.PathValue("slug"))
	var stages []*stageBinding
	if f != nil {
		stages = s.m.flowStages(f)
	}
	s.mu.RUnlock()
	if f == nil {
		writeError(w, http.StatusNotFound, "Not found.")
		return
	}
	sess := s.sessions.fromRequest(r)
	if sess == nil {
		sess = s.sessions.create()
		s.sessions.setCookie(w, sess)
	}
	s.sessions.mu.Lock()
	plan := sess.plan
	if plan == nil || plan.flow != f || r.Method == http.MethodGet {
		plan = &flowPlan{flow: f, stages: stages, pos: -1, next: "/"}
		if inner, err := url.ParseQuery(r.URL.Query().Get("query")); err == nil && inner.Get("next") != "" {
			plan.next = safeNext(inner.Get("next"))
		}
		sess.plan = plan
	}
	user := sess.user
	s.sessions.mu.Unlock()

	plan.mu.Lock()
	defer plan.mu.Unlock()
	if r.Method == http.MethodGet || plan.stage == "" {
		if r.Method != http.MethodPost || plan.flow.designation != "authentication" || len(plan.stages) == 0 {
			s.startPlan(w, r, sess, plan, user)
			return
		}
		// A POST that starts a plan answers its first stage, as
		// authentik's executor takes it: a client that knows the flow
		// begins with identification saves the GET. Stages that ask
		// nothing run first.
		if !s.advance(w, r, sess, plan) {
			return
		}
	}
	var answer map[string]any
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&answer); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"non_field_errors": []string{"Invalid JSON."}})
		return
	}
	if c, _ := answer["component"].(string); c != plan.stage {
		s.writeChallenge(w, plan, map[string]any{"non_field_errors": []any{errDetail("Unexpected stage "+c, "invalid")}})
		return
	}
	str := func(k string) string { v, _ := answer[k].(string); return v }
	switch plan.stage {
	case componentIdentification:
		plan.uid = str("uid_field")
		if plan.uid == "" {
			// authentik's identification stage raises this from validate,
			// so it is a non-field error.
			s.writeChallenge(w, plan, map[string]any{"non_field_errors": []any{errDetail("No identification data provided.", "invalid")}})
			return
		}
		plan.user = s.lookupUser(plan.uid)
		if s.advance(w, r, sess, plan) {
			s.writeChallenge(w, plan, nil)
		}
	case componentPassword:
		s.mu.RLock()
		ok := plan.user != nil && plan.user.isActive && checkPassword(plan.user, str("password"))
		s.mu.RUnlock()
		if !ok {
			plan.failures++
			if plan.failures >= maxPasswordFailures {
				s.deny(w, sess, plan, "Too many failed password attempts.")
				return
			}
			s.writeChallenge(w, plan, map[string]any{"password": []any{errDetail("Invalid password", "invalid")}})
			return
		}
		plan.amr = []string{"pwd"}
		if s.advance(w, r, sess, plan) {
			s.writeChallenge(w, plan, nil)
		}
	case componentValidate:
		if _, ok := s.checkCode(plan.user, strings.TrimSpace(str("code"))); !ok {
			s.writeChallenge(w, plan, map[string]any{"code": []any{errDetail(
				"Invalid Token. Please ensure the time on your device is accurate and try again.", "invalid")}})
			return
		}
		plan.amr = append(plan.amr, "mfa")
		if s.advance(w, r, sess, plan) {
			s.writeChallenge(w, plan, nil)
		}
	default:
		s.writeChallenge(w, plan, nil)
	}
}

func errDetail(msg, code string) map[string]any { return map[string]any{"string": msg, "code": code} }

// startPlan answers a flow's first challenge.
func (s *Server) startPlan(w http.ResponseWriter, r *http.Request, sess *coreSession, plan *flowPlan, current *user) {
	switch plan.flow.designation {
	case "authentication":
		if len(plan.stages) == 0 {
			// authentik cannot plan a flow without stages.
			s.deny(w, sess, plan, "Flow does not apply to current user.")
			return
		}
		if s.advance(w, r, sess, plan) {
			s.writeChallenge(w, plan, nil)
		}
	case "authorization":
		if current == nil {
			s.deny(w, sess, plan, "Flow does not apply to current user.")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"component": componentRedirect, "to": plan.next,
			"flow_info": flowInfo(plan.flow)})
	case "invalidation":
		s.endSession(sess)
		writeJSON(w, http.StatusOK, map[string]any{"component": componentRedirect, "to": "/",
			"flow_info": flowInfo(plan.flow)})
	default:
		s.deny(w, sess, plan, "Flow not supported by the test core.")
	}
}

// advance moves the plan to its next stage. Stages that ask nothing run
// at once: the user-login stage, the Mutual TLS stage, and authenticator
// validation for a user without a device (authentik's default skips
// it). It returns true with plan.stage set when a stage waits for an
// answer, which the caller sends or reads; false when it answered the
// request itself: the flow was denied, or finished with a redirect.
func (s *Server) advance(w http.ResponseWriter, r *http.Request, sess *coreSession, plan *flowPlan) bool {
	for {
		plan.pos++
		if plan.pos >= len(plan.stages) {
			s.sessions.mu.Lock()
			if sess.plan == plan {
				sess.plan = nil
			}
			s.sessions.mu.Unlock()
			writeJSON(w, http.StatusOK, map[string]any{"component": componentRedirect, "to": plan.next,
				"flow_info": flowInfo(plan.flow)})
			return false
		}
		st := plan.stages[plan.pos].stage
		switch st.model {
		case modelIdentificationStage:
			plan.stage = componentIdentification
			return true
		case modelPasswordStage:
			plan.stage = componentPassword
			return true
		case modelValidateStage:
			s.mu.RLock()
			devices := plan.user != nil && s.hasDevices(plan.user)
			s.mu.RUnlock()
			if devices {
				plan.stage = componentValidate
				return true
			}
		case modelUserLoginStage:
			// Like authentik's user-login stage it refuses a user who
			// was deactivated while the flow ran (after the password
			// stage let them through).
			s.mu.RLock()
			active := plan.user != nil && plan.user.isActive
			s.mu.RUnlock()
			if !active {
				s.deny(w, sess, plan, "User is not active.")
				return false
			}
			n := s.completeLogin(w, sess, plan.user, plan.amr)
			// The login starts a new session; the plan goes on in it.
			s.sessions.mu.Lock()
			sess.plan, n.plan = nil, plan
			s.sessions.mu.Unlock()
			sess = n
		case modelMTLSStage:
			if msg := s.checkMTLS(r, plan, st); msg != "" {
				s.deny(w, sess, plan, msg)
				return false
			}
		default:
			s.deny(w, sess, plan, "Stage not supported by the test core.")
			return false
		}
	}
}

func (s *Server) deny(w http.ResponseWriter, sess *coreSession, plan *flowPlan, msg string) {
	s.sessions.mu.Lock()
	sess.plan = nil
	s.sessions.mu.Unlock()
	pending := ""
	if plan.user != nil {
		s.mu.RLock()
		pending = plan.user.username
		s.mu.RUnlock()
	}
	writeJSON(w, http.StatusOK, map[string]any{"component": componentAccessDenied, "flow_info": flowInfo(plan.flow),
		"pending_user": pending, "pending_user_avatar": avatar, "error_message": msg})
}

func flowInfo(f *flow) map[string]any {
	return map[string]any{"title": f.title, "background": "", "cancel_url": "/flows/-/cancel/", "layout": "stacked"}
}

// writeChallenge answers the plan's current stage, with errors if the
// last answer was rejected.
func (s *Server) writeChallenge(w http.ResponseWriter, plan *flowPlan, errs map[string]any) {
	c := map[string]any{"component": plan.stage, "flow_info": flowInfo(plan.flow)}
	if errs != nil {
		c["response_errors"] = errs
	}
	pending := plan.uid
	if plan.user != nil {
		s.mu.RLock()
		pending = plan.user.username
		s.mu.RUnlock()
	}
	switch plan.stage {
	case componentIdentification:
		c["user_fields"] = []string{"username", "email"}
		c["password_fields"] = false
		c["allow_show_password"] = false
		c["flow_designation"] = plan.flow.designation
		c["captcha_stage"] = nil
		c["primary_action"] = "Log in"
		c["sources"] = []any{}
		c["show_source_labels"] = false
		c["enable_remember_me"] = false
		c["passkey_challenge"] = nil
	case componentPassword:
		c["pending_user"], c["pending_user_avatar"], c["allow_show_password"] = pending, avatar, false
	case componentValidate:
		c["pending_user"], c["pending_user_avatar"] = pending, avatar
		c["configuration_stages"] = []any{}
		c["device_challenges"] = s.deviceChallenges(plan.user)
	}
	writeJSON(w, http.StatusOK, c)
}

// deviceChallenges lists one challenge per device class, as authentik's
// get_device_challenges does, for every confirmed device: a static
// device whose tokens are used up is still listed.
func (s *Server) deviceChallenges(u *user) []any {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []any{}
	seen := map[string]bool{}
	add := func(class string, id int, lastUsed *time.Time) {
		if seen[class] {
			return
		}
		seen[class] = true
		var last any
		if lastUsed != nil {
			last = ts(*lastUsed)
		}
		out = append(out, map[string]any{"device_class": class, "device_uid": strconv.Itoa(id),
			"challenge": map[string]any{}, "last_used": last})
	}
	for _, d := range s.m.totp {
		if d.user == u && d.confirmed {
			add("totp", d.id, d.lastUsed)
		}
	}
	for _, d := range s.m.static {
		if d.user == u && d.confirmed {
			add("static", d.id, d.lastUsed)
		}
	}
	return out
}
