package outposttest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"sync"
	"time"

	"github.com/akoutpost/akoutpost/outpost"
)

// sessionCookie is the core's session cookie, as authentik names it.
const sessionCookie = "authentik_session"

// sessionLifetime bounds a core session, like authentik's default
// session duration.
const sessionLifetime = 24 * time.Hour

// coreSession is a browser's or flow client's session with the core.
// Fields are guarded by the store's mutex.
type coreSession struct {
	key     string
	user    *user // nil until a flow logged someone in
	amr     []string
	authAt  time.Time
	expires time.Time
	plan    *flowPlan
	store   *sessionStore
}

// id is how authentik names the session to outposts: the SHA-256 hex of
// the session key.
func (c *coreSession) id() string {
	h := sha256.Sum256([]byte(c.key))
	return hex.EncodeToString(h[:])
}

func (c *coreSession) currentUser() *user {
	c.store.mu.Lock()
	defer c.store.mu.Unlock()
	return c.user
}

type sessionStore struct {
	mu    sync.Mutex
	key   []byte
	byKey map[string]*coreSession
}

func (st *sessionStore) init(secret string) {
	h := sha256.Sum256([]byte("session cookie key\x00" + secret))
	st.key = h[:]
	st.byKey = map[string]*coreSession{}
}

func (st *sessionStore) create() *coreSession {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	c := &coreSession{key: hex.EncodeToString(b), expires: time.Now().Add(sessionLifetime), store: st}
	st.mu.Lock()
	st.byKey[c.key] = c
	st.mu.Unlock()
	return c
}

// fromRequest returns the valid session the request's cookie names.
func (st *sessionStore) fromRequest(r *http.Request) *coreSession {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	claims, err := verifyJWT(ck.Value, st.key)
	if err != nil {
		return nil
	}
	sid, _ := claims["sid"].(string)
	st.mu.Lock()
	defer st.mu.Unlock()
	c := st.byKey[sid]
	if c == nil || time.Now().After(c.expires) {
		return nil
	}
	return c
}

// setCookie writes the session cookie: a JWT whose sid claim is the
// session key, like authentik's.
func (st *sessionStore) setCookie(w http.ResponseWriter, c *coreSession) {
	st.mu.Lock()
	claims := map[string]any{"sid": c.key, "iss": "authentik", "authenticated": c.user != nil}
	if c.user != nil {
		claims["sub"] = c.user.uuid
	}
	st.mu.Unlock()
	v, err := signJWT(st.key, "", claims)
	if err != nil {
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: v, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Expires: c.expires})
}

// login attaches u to a fresh session key (as Django cycles the key on
// login) and returns the new session, which replaces c.
func (st *sessionStore) login(c *coreSession, u *user, amr []string) *coreSession {
	n := st.create()
	st.mu.Lock()
	n.user, n.amr, n.authAt = u, amr, time.Now()
	if c != nil {
		delete(st.byKey, c.key)
	}
	st.mu.Unlock()
	return n
}

// remove forgets a session and returns whether it existed.
func (st *sessionStore) remove(c *coreSession) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.byKey[c.key] != c {
		return false
	}
	delete(st.byKey, c.key)
	return true
}

// endSession logs a session out and tells every outpost, as authentik
// does when an authenticated session is deleted.
func (s *Server) endSession(c *coreSession) {
	if c == nil || !s.sessions.remove(c) {
		return
	}
	if c.currentUser() == nil {
		return
	}
	s.Send("", outpost.InstructionSessionEnd, map[string]any{"type": "event.session.end", "session_id": c.id()})
}

// Session describes a logged-in core session.
type Session struct {
	// ID is the SHA-256 hex of the session key: the sid claim of tokens
	// and the session_id of session-end messages.
	ID       string
	Username string
	Expires  time.Time
}

// Sessions lists the logged-in sessions.
func (s *Server) Sessions() []Session {
	s.sessions.mu.Lock()
	defer s.sessions.mu.Unlock()
	var out []Session
	for _, c := range s.sessions.byKey {
		if c.user != nil {
			out = append(out, Session{ID: c.id(), Username: c.user.username, Expires: c.expires})
		}
	}
	return out
}

// EndSessions logs out every session of the user (all sessions for "")
// and sends each one's session-end message (instruction 4) to every
// outpost. It returns how many sessions ended.
func (s *Server) EndSessions(username string) int {
	s.sessions.mu.Lock()
	var ending []*coreSession
	for _, c := range s.sessions.byKey {
		if c.user != nil && (username == "" || c.user.username == username) {
			ending = append(ending, c)
		}
	}
	s.sessions.mu.Unlock()
	for _, c := range ending {
		s.endSession(c)
	}
	return len(ending)
}
