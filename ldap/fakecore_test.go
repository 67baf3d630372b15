package ldap

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeCore is a small stand-in for authentik's API, enough for binds and
// searches: the flow executor (identification, password, TOTP), the
// access check, users/me and the users and groups lists.
type fakeCore struct {
	mu       sync.Mutex
	users    []*fakeUser
	groups   []group
	down     int // answer 503 (busy) or 500.. when non-zero
	sessions map[string]*fakeUser
	flows    map[string]string // flow state cookie -> state
	requests []string          // "METHOD path?query"
	hold     chan struct{}     // when set, user listings wait until it is closed
	n        int
	srv      *httptest.Server
}

type fakeUser struct {
	user
	password  string
	code      string
	canSearch bool
	noAccess  bool
}

func newFakeCore(t testing.TB) *fakeCore {
	f := &fakeCore{sessions: map[string]*fakeUser{}, flows: map[string]string{}}
	users, groups := e2eDirectory()
	for _, u := range users {
		fu := &fakeUser{user: u, password: u.Username + "-pw"}
		if u.Username == "admin" {
			fu.canSearch = true
		}
		f.users = append(f.users, fu)
	}
	f.users = append(f.users,
		&fakeUser{user: user{PK: 11, Username: "mfa", Name: "M F A", UID: "uid-mfa", Active: true, PwdChanged: t0}, password: "mfa-pw", code: "123456"},
		&fakeUser{user: user{PK: 12, Username: "inactive", UID: "uid-inactive", Active: false, PwdChanged: t0}, password: "inactive-pw"},
		&fakeUser{user: user{PK: 13, Username: "outsider", UID: "uid-outsider", Active: true, PwdChanged: t0}, password: "outsider-pw", noAccess: true},
	)
	f.groups = groups
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeCore) user(name string) *fakeUser {
	for _, u := range f.users {
		if u.Username == name {
			return u
		}
	}
	return nil
}

// setPassword changes a password the way authentik does: the password
// change date moves.
func (f *fakeCore) setPassword(name, pw string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u := f.user(name)
	u.password = pw
	u.PwdChanged = u.PwdChanged.Add(time.Hour)
	u.LastUpdated = time.Now()
}

func (f *fakeCore) setDown(status int) {
	f.mu.Lock()
	f.down = status
	f.mu.Unlock()
}

func (f *fakeCore) requestCount(prefix string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.requests {
		if strings.HasPrefix(r, prefix) {
			n++
		}
	}
	return n
}

func (f *fakeCore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery)
	if hold := f.hold; hold != nil && r.URL.Path == "/api/v3/core/users/" {
		f.mu.Unlock()
		<-hold
		f.mu.Lock()
	}
	defer f.mu.Unlock()
	if f.down != 0 {
		w.WriteHeader(f.down)
		return
	}
	send := func(v any) { json.NewEncoder(w).Encode(v) }
	path := strings.TrimPrefix(r.URL.Path, "/api/v3")
	switch {
	case strings.HasPrefix(path, "/flows/executor/"):
		f.flow(w, r, send)
	case path == "/core/users/me/":
		u := f.sessionUser(r)
		if u == nil {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		send(map[string]any{"user": map[string]any{"pk": u.PK, "username": u.Username}})
	case strings.HasPrefix(path, "/outposts/ldap/") && strings.HasSuffix(path, "/check_access/"):
		u := f.sessionUser(r)
		if u == nil {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		send(map[string]any{"has_search_permission": u.canSearch, "access": map[string]any{"passing": !u.noAccess, "messages": []string{}}})
	case path == "/core/users/":
		if r.Header.Get("Authorization") != "Bearer outpost-token" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		q := r.URL.Query()
		var out []any
		for _, u := range f.users {
			if v := q.Get("username"); v != "" && v != u.Username {
				continue
			}
			if v := q.Get("email"); v != "" && v != u.Email {
				continue
			}
			if v := q.Get("groups_by_name"); v != "" && !inGroup(&u.user, v) {
				continue
			}
			if v := q.Get("last_updated__gt"); v != "" {
				if t, err := time.Parse(time.RFC3339, v); err == nil && !u.LastUpdated.After(t) {
					continue
				}
			}
			out = append(out, wireUserJSON(&u.user))
		}
		sendPage(w, r, out)
	case path == "/core/groups/":
		q := r.URL.Query()
		var out []any
		for _, g := range f.groups {
			if v := q.Get("members_by_username"); v != "" && !hasMember(&g, v) {
				continue
			}
			out = append(out, wireGroupJSON(&g))
		}
		sendPage(w, r, out)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func inGroup(u *user, name string) bool {
	for _, g := range u.Groups {
		if g.Name == name {
			return true
		}
	}
	return false
}

func hasMember(g *group, name string) bool {
	for _, m := range g.Members {
		if m.Username == name {
			return true
		}
	}
	return false
}

// sendPage answers one page of a paginated list, honouring page_size.
func sendPage(w http.ResponseWriter, r *http.Request, items []any) {
	size, _ := strconv.Atoi(r.URL.Query().Get("page_size"))
	if size <= 0 {
		size = 100
	}
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	if page <= 0 {
		page = 1
	}
	start := min((page-1)*size, len(items))
	end := min(start+size, len(items))
	next := 0
	if end < len(items) {
		next = page + 1
	}
	res := items[start:end]
	if res == nil {
		res = []any{}
	}
	json.NewEncoder(w).Encode(map[string]any{"pagination": map[string]any{"next": next, "count": len(items)}, "results": res})
}

func wireUserJSON(u *user) map[string]any {
	groups := []any{}
	for _, g := range u.Groups {
		groups = append(groups, map[string]any{"pk": g.PK, "num_pk": g.NumPK, "name": g.Name, "is_superuser": g.Superuser, "attributes": g.Attributes})
	}
	m := map[string]any{"pk": u.PK, "username": u.Username, "name": u.Name, "is_active": u.Active,
		"is_superuser": u.Superuser, "email": u.Email, "uid": u.UID, "attributes": u.Attributes, "groups_obj": groups}
	for k, t := range map[string]time.Time{"date_joined": u.DateJoined, "last_updated": u.LastUpdated, "password_change_date": u.PwdChanged} {
		if !t.IsZero() {
			m[k] = t.Format(time.RFC3339Nano)
		}
	}
	return m
}

func wireGroupJSON(g *group) map[string]any {
	users := []any{}
	for _, m := range g.Members {
		users = append(users, map[string]any{"pk": m.PK, "username": m.Username})
	}
	rel := func(names []string) []any {
		out := []any{}
		for _, n := range names {
			out = append(out, map[string]any{"pk": "x", "name": n})
		}
		return out
	}
	return map[string]any{"pk": g.PK, "num_pk": g.NumPK, "name": g.Name, "is_superuser": g.Superuser,
		"attributes": g.Attributes, "users_obj": users, "parents_obj": rel(g.Parents), "children_obj": rel(g.Children)}
}

func (f *fakeCore) sessionUser(r *http.Request) *fakeUser {
	c, err := r.Cookie("authentik_session")
	if err != nil {
		return nil
	}
	return f.sessions[c.Value]
}

func (f *fakeCore) flow(w http.ResponseWriter, r *http.Request, send func(any)) {
	errs := func(component, field, msg string) {
		send(map[string]any{"component": component, "response_errors": map[string]any{field: []any{map[string]any{"string": msg, "code": "invalid"}}}})
	}
	if r.Header.Get("X-authentik-outpost-token") != "outpost-token" {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	state := ""
	if c, err := r.Cookie("fake_flow"); err == nil {
		state = f.flows[c.Value]
	}
	setState := func(s string) {
		f.n++
		id := fmt.Sprintf("f%d", f.n)
		f.flows[id] = s
		http.SetCookie(w, &http.Cookie{Name: "fake_flow", Value: id, Path: "/"})
	}
	if r.Method == http.MethodGet {
		setState("ident")
		send(map[string]any{"component": "ak-stage-identification"})
		return
	}
	var body map[string]any
	json.NewDecoder(r.Body).Decode(&body)
	kind, name, _ := strings.Cut(state, ":")
	switch kind {
	case "ident":
		uid, _ := body["uid_field"].(string)
		var u *fakeUser
		for _, c := range f.users {
			if strings.EqualFold(c.Username, uid) {
				u = c
			}
		}
		if u == nil {
			errs("ak-stage-identification", "non_field_errors", "Failed to authenticate.")
			return
		}
		setState("pw:" + u.Username)
		send(map[string]any{"component": "ak-stage-password"})
	case "pw":
		u := f.user(name)
		if body["password"] != u.password || !u.Active {
			errs("ak-stage-password", "password", "Invalid password")
			return
		}
		if u.code != "" {
			setState("mfa:" + name)
			send(map[string]any{"component": "ak-stage-authenticator-validate", "device_challenges": []any{
				map[string]any{"device_class": "totp", "device_uid": "1", "challenge": map[string]any{}}}})
			return
		}
		f.login(w, u, send)
	case "mfa":
		u := f.user(name)
		if body["code"] != u.code {
			errs("ak-stage-authenticator-validate", "code", "Invalid Token")
			return
		}
		f.login(w, u, send)
	default:
		w.WriteHeader(http.StatusBadRequest)
	}
}

func (f *fakeCore) login(w http.ResponseWriter, u *fakeUser, send func(any)) {
	f.n++
	sess := fmt.Sprintf("session-%s-%d", u.Username, f.n)
	f.sessions[sess] = u
	http.SetCookie(w, &http.Cookie{Name: "authentik_session", Value: sess, Path: "/"})
	send(map[string]any{"component": "xak-flow-redirect", "to": "/"})
}

// sessionID is what the core's session-end message carries for sess.
func (f *fakeCore) sessionIDs(username string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for k, u := range f.sessions {
		if u.Username == username {
			out = append(out, hexSHA(k))
		}
	}
	return out
}

func (f *fakeCore) url() *url.URL {
	u, _ := url.Parse(f.srv.URL + "/")
	return u
}

func hexSHA(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
