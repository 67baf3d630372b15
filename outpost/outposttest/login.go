package outposttest

import (
	"html/template"
	"net/http"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// The plain HTML pages a browser (or curl with a cookie jar) uses: the
// login form of authentication flows, the logout page of invalidation
// flows, and an index.

var pages = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>{{.Title}} - akoutpost test core</title>
<style>body{font-family:sans-serif;max-width:28em;margin:3em auto}label{display:block;margin:.6em 0}
input{width:100%;padding:.3em}.error{color:#b00}</style></head><body>
<h1>{{.Title}}</h1>
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}
{{if .Message}}<p>{{.Message}}</p>{{end}}
{{if .Form}}<form method="post">
<input type="hidden" name="next" value="{{.Next}}">
<label>Username or email <input name="username" autocomplete="username" value="{{.Username}}" autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<label>Authenticator code (only if you have an authenticator) <input name="code" autocomplete="one-time-code"></label>
<button type="submit">Log in</button>
</form>{{end}}
{{if .Links}}<ul>{{range .Links}}<li><a href="{{.URL}}">{{.Name}}</a></li>{{end}}</ul>{{end}}
</body></html>
`))

type pageLink struct{ Name, URL string }

type pageData struct {
	Title, Error, Message, Next, Username string
	Form                                  bool
	Links                                 []pageLink
}

func renderPage(w http.ResponseWriter, status int, d pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = pages.Execute(w, d)
}

func (s *Server) errorPage(w http.ResponseWriter, status int, title, msg string) {
	renderPage(w, status, pageData{Title: title, Error: msg})
}

// safeNext keeps only local paths, so the login page is no open redirect.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	return next
}

func checkPassword(u *user, password string) bool {
	return u.password != nil && bcrypt.CompareHashAndPassword(u.password, []byte(password)) == nil
}

// userActive reports whether u may still use what it logged in to.
func (s *Server) userActive(u *user) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return u.isActive
}

// hasDevices reports whether u has a confirmed TOTP or static device.
// A static device whose tokens are all used up still counts: in authentik
// it stays a confirmed device (django-otp's devices_for_user), so the
// authenticator validation stage still demands a code, and no code of
// that device is right any more. Callers hold s.mu.
func (s *Server) hasDevices(u *user) bool {
	for _, d := range s.m.totp {
		if d.user == u && d.confirmed {
			return true
		}
	}
	for _, d := range s.m.static {
		if d.user == u && d.confirmed {
			return true
		}
	}
	return false
}

// checkCode verifies an authenticator code against u's devices; a static
// token is used up. It returns the device class that accepted the code.
func (s *Server) checkCode(u *user, code string) (string, bool) {
	s.lockModel()
	defer s.mu.Unlock()
	if code == "" {
		return "", false
	}
	for _, d := range s.m.totp {
		if d.user == u && d.confirmed && d.check(code, time.Now()) {
			return "totp", true
		}
	}
	for _, d := range s.m.static {
		if d.user != u || !d.confirmed {
			continue
		}
		for i, t := range d.tokens {
			if constantTimeEqual(t, code) {
				d.tokens = append(d.tokens[:i:i], d.tokens[i+1:]...)
				now := time.Now()
				d.lastUsed = &now
				return "static", true
			}
		}
	}
	return "", false
}

// lookupUser finds a user by username or email, as the default
// identification stage does: its case_insensitive_matching defaults to
// true, so authentik queries username__iexact and email__iexact, and an
// LDAP bind as cn=Alice finds the user alice. An exact username wins over
// a match that differs in case only.
func (s *Server) lookupUser(uid string) *user {
	if uid == "" {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if u := s.m.userByName(uid); u != nil {
		return u
	}
	for _, u := range s.m.users {
		if strings.EqualFold(u.username, uid) || strings.EqualFold(u.email, uid) {
			return u
		}
	}
	return nil
}

func (s *Server) handleFlowPage(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return
	}
	s.mu.RLock()
	f := s.m.flowBySlug(r.PathValue("slug"))
	s.mu.RUnlock()
	if f == nil {
		s.errorPage(w, http.StatusNotFound, "Not found", "No flow with this slug.")
		return
	}
	next := safeNext(r.Form.Get("next"))
	sess := s.sessions.fromRequest(r)
	var current *user
	if sess != nil {
		current = sess.currentUser()
	}
	switch f.designation {
	case "invalidation":
		s.endSession(sess)
		http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true})
		renderPage(w, http.StatusOK, pageData{Title: "Logged out", Message: "You have been logged out.",
			Links: []pageLink{{"Log in again", "/if/flow/default-authentication-flow/"}}})
		return
	case "authorization":
		// Logged in: the (implicit) consent is given and the authorization
		// continues. Otherwise the login form is served right here, so a
		// client following the authorize redirect logs in at the
		// authorization flow's URL.
		if current != nil {
			http.Redirect(w, r, next, http.StatusFound)
			return
		}
	case "authentication":
	default:
		s.errorPage(w, http.StatusBadRequest, "Unsupported flow", "The test core only runs login, authorization and logout flows.")
		return
	}
	if r.Method != http.MethodPost {
		if current != nil && r.Form.Has("next") {
			http.Redirect(w, r, next, http.StatusFound)
			return
		}
		d := pageData{Title: "Log in", Form: true, Next: next}
		if current != nil {
			d.Message = "You are logged in as " + current.username + "."
		}
		renderPage(w, http.StatusOK, d)
		return
	}
	username := r.PostForm.Get("username")
	fail := func(msg string) {
		renderPage(w, http.StatusOK, pageData{Title: "Log in", Form: true, Next: next, Username: username, Error: msg})
	}
	u := s.lookupUser(username)
	s.mu.RLock()
	ok := u != nil && u.isActive && checkPassword(u, r.PostForm.Get("password"))
	mfa := ok && s.hasDevices(u)
	s.mu.RUnlock()
	if !ok {
		fail("Invalid username or password.")
		return
	}
	amr := []string{"pwd"}
	if mfa {
		if _, ok := s.checkCode(u, strings.TrimSpace(r.PostForm.Get("code"))); !ok {
			fail("Enter a valid code from your authenticator.")
			return
		}
		amr = append(amr, "mfa")
	}
	s.completeLogin(w, sess, u, amr)
	http.Redirect(w, r, next, http.StatusFound)
}

// completeLogin logs u in on a fresh session and sets its cookie.
func (s *Server) completeLogin(w http.ResponseWriter, old *coreSession, u *user, amr []string) *coreSession {
	n := s.sessions.login(old, u, amr)
	s.sessions.setCookie(w, n)
	s.lockModel()
	now := time.Now()
	u.lastLogin = &now
	s.mu.Unlock()
	return n
}

func (s *Server) handleIndex(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	var links []pageLink
	for _, a := range s.m.apps {
		if a.launchURL != "" {
			links = append(links, pageLink{a.name, a.launchURL})
		} else if a.provider != nil && a.provider.kind == kindProxy {
			links = append(links, pageLink{a.name, a.provider.externalHost})
		}
	}
	s.mu.RUnlock()
	d := pageData{Title: "akoutpost test core", Links: append(links,
		pageLink{"Log in", "/if/flow/default-authentication-flow/"}, pageLink{"Log out", "/if/flow/default-invalidation-flow/"})}
	if sess := s.sessions.fromRequest(r); sess != nil && sess.currentUser() != nil {
		d.Message = "You are logged in as " + sess.currentUser().username + "."
	}
	renderPage(w, http.StatusOK, d)
}
