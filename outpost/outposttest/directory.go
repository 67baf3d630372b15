package outposttest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The directory API: users, groups, the current user and the LDAP access
// check, with the filters authentik's LDAP outpost uses.

// avatar is a tiny inline image; authentik sends a URL or a data URI.
const avatar = "data:image/svg+xml;base64,PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciLz4="

func ts(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z") }

// canListDirectory: LDAP outposts (whose service account authentik gives
// view_user and view_group) and superusers see everyone; other sessions
// see themselves; other tokens are refused.
func (s *Server) directoryScope(rc *reqCtx) (all bool, self *user, ok bool) {
	switch {
	case rc.session != nil && rc.user != nil && rc.user.superuser():
		return true, nil, true
	case rc.session != nil && rc.user != nil:
		return false, rc.user, true
	case rc.outpost != nil && rc.outpost.otype == kindLDAP:
		return true, nil, true
	case rc.user != nil && rc.user.superuser():
		return true, nil, true
	}
	return false, nil, false
}

func boolParam(q map[string][]string, key string, def bool) bool {
	v, ok := q[key]
	if !ok || len(v) == 0 {
		return def
	}
	return v[0] == "true" || v[0] == "True" || v[0] == "1"
}

// attributesFilter reads the JSON "attributes" filter users and groups
// share, answering 400 as the core does when it is not JSON.
func attributesFilter(w http.ResponseWriter, q url.Values) (map[string]any, bool) {
	v := q.Get("attributes")
	if v == "" {
		return nil, true
	}
	var f map[string]any
	if err := json.Unmarshal([]byte(v), &f); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"attributes": []string{"filter: failed to parse JSON"}})
		return nil, false
	}
	return f, true
}

func (s *Server) handleUsers(w http.ResponseWriter, r *http.Request) {
	rc := requestContext(r)
	all, self, ok := s.directoryScope(rc)
	if !ok {
		writeError(w, http.StatusForbidden, "You do not have permission to perform this action.")
		return
	}
	q := r.URL.Query()
	s.mu.RLock()
	defer s.mu.RUnlock()
	attrFilter, ok := attributesFilter(w, q)
	if !ok {
		return
	}
	uf := compileUserFilter(q, attrFilter)
	// Filtering keeps the order of a stable sort, so the cached sorted
	// directory filtered equals the filtered list sorted, and a page of a
	// large directory costs one pass instead of a sort.
	sorted := s.sortedUsers(q.Get("ordering"))
	list := sorted
	if !all || !uf.empty() {
		list = nil
		for _, u := range sorted {
			if (all || u == self) && uf.matches(s, u) {
				list = append(list, u)
			}
		}
	}
	includeGroups := boolParam(q, "include_groups", true)
	includeRoles := boolParam(q, "include_roles", true)
	paginate(w, r, list, func(u *user) any { return s.userJSON(u, includeGroups, includeRoles) })
}

// userFilter is the users list's query, read once per request rather than
// once per user.
type userFilter struct {
	eq         []func(*user) bool
	attrs      map[string]any
	typeSet    []string
	groupNames []string
	groupPKs   []string
}

func compileUserFilter(q map[string][]string, attrs map[string]any) *userFilter {
	f := &userFilter{attrs: attrs, typeSet: q["type"], groupNames: q["groups_by_name"], groupPKs: q["groups_by_pk"]}
	get := func(k string) (string, bool) {
		v, ok := q[k]
		if !ok || len(v) == 0 {
			return "", false
		}
		return v[0], true
	}
	field := func(k string, of func(*user) string) {
		if v, ok := get(k); ok {
			f.eq = append(f.eq, func(u *user) bool { return of(u) == v })
		}
	}
	field("username", func(u *user) string { return u.username })
	field("name", func(u *user) string { return u.name })
	field("email", func(u *user) string { return u.email })
	field("uuid", func(u *user) string { return u.uuid })
	field("path", func(u *user) string { return u.path })
	if v, ok := get("path_startswith"); ok {
		f.eq = append(f.eq, func(u *user) bool { return strings.HasPrefix(u.path, v) })
	}
	if _, ok := get("is_active"); ok {
		want := boolParam(q, "is_active", false)
		f.eq = append(f.eq, func(u *user) bool { return u.isActive == want })
	}
	if _, ok := get("is_superuser"); ok {
		want := boolParam(q, "is_superuser", false)
		f.eq = append(f.eq, func(u *user) bool { return u.superuser() == want })
	}
	if v, ok := get("search"); ok && v != "" {
		v = strings.ToLower(v)
		f.eq = append(f.eq, func(u *user) bool {
			return strings.Contains(strings.ToLower(u.username), v) || strings.Contains(strings.ToLower(u.name), v) ||
				strings.Contains(strings.ToLower(u.email), v)
		})
	}
	return f
}

func (f *userFilter) empty() bool {
	return len(f.eq) == 0 && len(f.attrs) == 0 && len(f.typeSet) == 0 && len(f.groupNames) == 0 && len(f.groupPKs) == 0
}

func (f *userFilter) matches(s *Server, u *user) bool {
	for _, eq := range f.eq {
		if !eq(u) {
			return false
		}
	}
	if len(f.typeSet) > 0 && !slices.Contains(f.typeSet, u.userType) {
		return false
	}
	if names := f.groupNames; len(names) > 0 && !slices.ContainsFunc(u.groups, func(g *group) bool { return slices.Contains(names, g.name) }) {
		return false
	}
	if pks := f.groupPKs; len(pks) > 0 && !slices.ContainsFunc(u.groups, func(g *group) bool { return slices.Contains(pks, g.uuid) }) {
		return false
	}
	for k, want := range f.attrs {
		if !jsonEqual(u.attributes[k], want) {
			return false
		}
	}
	return true
}

func jsonEqual(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}

func sortUsers(list []*user, ordering string) {
	desc := strings.HasPrefix(ordering, "-")
	field := strings.TrimPrefix(ordering, "-")
	slices.SortStableFunc(list, func(a, b *user) int {
		var c int
		switch field {
		case "pk":
			c = a.pk - b.pk
		case "name":
			c = strings.Compare(a.name, b.name)
		case "email":
			c = strings.Compare(a.email, b.email)
		default:
			c = strings.Compare(a.username, b.username)
		}
		if desc {
			c = -c
		}
		return c
	})
}

// dirCache keeps what every page of the users and groups lists would
// otherwise recompute: the users in each ordering and the groups' members
// and children. An outpost in cached mode reads a directory of 100,000
// users as a thousand pages; sorting the users and scanning every user for
// every group on each page made that take minutes. It is tied to the
// model's generation (see lockModel) and rebuilt after any change.
type dirCache struct {
	mu         sync.Mutex
	gen        uint64
	users      map[string][]*user // by ordering
	groupLists map[string][]*group
	groups     *groupIndex
}

// cache returns the directory cache for the current model; callers hold
// s.mu for reading and must not modify what it holds.
func (s *Server) cache() *dirCache {
	c := &s.dir
	c.mu.Lock()
	if c.gen != s.modelGen || c.users == nil {
		c.gen, c.users, c.groupLists, c.groups = s.modelGen, map[string][]*user{}, map[string][]*group{}, nil
	}
	c.mu.Unlock()
	return c
}

func (s *Server) sortedUsers(ordering string) []*user {
	c := s.cache()
	c.mu.Lock()
	defer c.mu.Unlock()
	list, ok := c.users[ordering]
	if !ok {
		list = slices.Clone(s.m.users)
		sortUsers(list, ordering)
		c.users[ordering] = list
	}
	return list
}

func (s *Server) groupIndex() *groupIndex {
	c := s.cache()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.groups == nil {
		c.groups = s.indexGroups()
	}
	return c.groups
}

func (s *Server) partialGroupJSON(g *group) map[string]any {
	return map[string]any{"pk": g.uuid, "num_pk": g.numPK, "name": g.name, "is_superuser": g.isSuperuser,
		"attributes": cloneMap(g.attributes)}
}

func roleList(rs []*role) ([]string, []any) {
	pks := make([]string, 0, len(rs))
	objs := make([]any, 0, len(rs))
	for _, r := range rs {
		pks = append(pks, r.uuid)
		objs = append(objs, map[string]any{"pk": r.uuid, "name": r.name})
	}
	return pks, objs
}

// userJSON is the schema's User.
func (s *Server) userJSON(u *user, includeGroups, includeRoles bool) map[string]any {
	groupPKs := make([]string, 0, len(u.groups))
	var groupsObj any
	objs := make([]any, 0, len(u.groups))
	for _, g := range u.groups {
		groupPKs = append(groupPKs, g.uuid)
		objs = append(objs, s.partialGroupJSON(g))
	}
	if includeGroups {
		groupsObj = objs
	}
	rolePKs, roleObjs := roleList(u.roles)
	var rolesObj any
	if includeRoles {
		rolesObj = roleObjs
	}
	var lastLogin any
	if u.lastLogin != nil {
		lastLogin = ts(*u.lastLogin)
	}
	return map[string]any{
		"pk": u.pk, "username": u.username, "name": u.name, "is_active": u.isActive, "last_login": lastLogin,
		"date_joined": ts(u.joined), "is_superuser": u.superuser(), "groups": groupPKs, "groups_obj": groupsObj,
		"roles": rolePKs, "roles_obj": rolesObj, "email": u.email, "avatar": avatar,
		"attributes": cloneMap(u.attributes), "uid": s.m.uid(u), "path": u.path, "type": u.userType,
		"uuid": u.uuid, "password_change_date": ts(u.pwChanged), "last_updated": ts(u.updated),
	}
}

func (s *Server) handleUser(w http.ResponseWriter, r *http.Request) {
	rc := requestContext(r)
	all, self, ok := s.directoryScope(rc)
	if !ok {
		writeError(w, http.StatusForbidden, "You do not have permission to perform this action.")
		return
	}
	pk, err := strconv.Atoi(r.PathValue("pk"))
	s.mu.RLock()
	defer s.mu.RUnlock()
	u := s.m.userByPK(pk)
	if err != nil || u == nil || !all && u != self {
		writeError(w, http.StatusNotFound, "No User matches the given query.")
		return
	}
	writeJSON(w, http.StatusOK, s.userJSON(u, true, true))
}

func (s *Server) handleMe(w http.ResponseWriter, r *http.Request) {
	rc := requestContext(r)
	s.mu.RLock()
	defer s.mu.RUnlock()
	u := rc.user
	groups := make([]any, 0, len(u.groups))
	for _, g := range u.groups {
		groups = append(groups, map[string]any{"pk": g.uuid, "name": g.name})
	}
	_, roles := roleList(u.roles)
	writeJSON(w, http.StatusOK, map[string]any{"user": map[string]any{
		"pk": u.pk, "username": u.username, "name": u.name, "is_active": u.isActive, "is_superuser": u.superuser(),
		"groups": groups, "roles": roles, "email": u.email, "avatar": avatar, "uid": s.m.uid(u),
		"settings": map[string]any{}, "type": u.userType, "system_permissions": []string{},
	}})
}

func (s *Server) groupMembers(g *group) []*user {
	var out []*user
	for _, u := range s.m.users {
		if containsPtr(u.groups, g) {
			out = append(out, u)
		}
	}
	return out
}

// groupIndex has every group's members and children, found in one pass,
// for a list: asking each group in turn costs groups × users.
type groupIndex struct {
	members  map[*group][]*user
	children map[*group][]*group
}

func (s *Server) indexGroups() *groupIndex {
	ix := &groupIndex{members: map[*group][]*user{}, children: map[*group][]*group{}}
	for _, u := range s.m.users {
		for i, g := range u.groups {
			// A user lists a group once (dedupe), but be safe as
			// groupMembers is.
			if !containsPtr(u.groups[:i], g) {
				ix.members[g] = append(ix.members[g], u)
			}
		}
	}
	for _, c := range s.m.groups {
		for i, p := range c.parents {
			if !containsPtr(c.parents[:i], p) {
				ix.children[p] = append(ix.children[p], c)
			}
		}
	}
	return ix
}

// groupRelations returns g's members and children, from ix when there is
// one, else by looking at every user and group.
func (s *Server) groupRelations(ix *groupIndex, g *group) (members []*user, children []*group) {
	if ix != nil {
		return ix.members[g], ix.children[g]
	}
	for _, c := range s.m.groups {
		if containsPtr(c.parents, g) {
			children = append(children, c)
		}
	}
	return s.groupMembers(g), children
}

func (s *Server) handleGroups(w http.ResponseWriter, r *http.Request) {
	rc := requestContext(r)
	all, self, ok := s.directoryScope(rc)
	if !ok {
		writeError(w, http.StatusForbidden, "You do not have permission to perform this action.")
		return
	}
	q := r.URL.Query()
	s.mu.RLock()
	defer s.mu.RUnlock()
	attrFilter, ok := attributesFilter(w, q)
	if !ok {
		return
	}
	ix := s.groupIndex()
	desc := strings.HasPrefix(q.Get("ordering"), "-")
	opts := groupOpts{users: boolParam(q, "include_users", true), parents: boolParam(q, "include_parents", false),
		children: boolParam(q, "include_children", false), inherited: boolParam(q, "include_inherited_roles", false)}
	if all && len(attrFilter) == 0 && !q.Has("name") && q.Get("search") == "" && !q.Has("is_superuser") &&
		len(q["members_by_username"]) == 0 && len(q["members_by_pk"]) == 0 {
		// The whole list, as an outpost in cached mode reads it page by
		// page: sorting every group for every page made a list of 100,000
		// groups take minutes.
		paginate(w, r, s.sortedGroups(desc), func(g *group) any { return s.groupJSON(g, opts, ix) })
		return
	}
	var list []*group
	for _, g := range s.m.groups {
		members := ix.members[g]
		if !all && !containsPtr(members, self) {
			continue
		}
		if v := q.Get("name"); q.Has("name") && g.name != v {
			continue
		}
		if v := strings.ToLower(q.Get("search")); v != "" && !strings.Contains(strings.ToLower(g.name), v) {
			continue
		}
		if q.Has("is_superuser") && boolParam(q, "is_superuser", false) != g.isSuperuser {
			continue
		}
		if names := q["members_by_username"]; len(names) > 0 && !slices.ContainsFunc(members, func(u *user) bool { return slices.Contains(names, u.username) }) {
			continue
		}
		if pks := q["members_by_pk"]; len(pks) > 0 && !slices.ContainsFunc(members, func(u *user) bool { return slices.Contains(pks, strconv.Itoa(u.pk)) }) {
			continue
		}
		match := true
		for k, want := range attrFilter {
			match = match && jsonEqual(g.attributes[k], want)
		}
		if match {
			list = append(list, g)
		}
	}
	sortGroups(list, desc)
	paginate(w, r, list, func(g *group) any { return s.groupJSON(g, opts, ix) })
}

type groupOpts struct{ users, parents, children, inherited bool }

func sortGroups(list []*group, desc bool) {
	slices.SortStableFunc(list, func(a, b *group) int {
		if desc {
			return strings.Compare(b.name, a.name)
		}
		return strings.Compare(a.name, b.name)
	})
}

// sortedGroups is every group by name, cached like sortedUsers.
func (s *Server) sortedGroups(desc bool) []*group {
	key := "name"
	if desc {
		key = "-name"
	}
	c := s.cache()
	c.mu.Lock()
	defer c.mu.Unlock()
	list, ok := c.groupLists[key]
	if !ok {
		list = slices.Clone(s.m.groups)
		sortGroups(list, desc)
		c.groupLists[key] = list
	}
	return list
}

func relatedGroupJSON(g *group) map[string]any {
	return map[string]any{"pk": g.uuid, "name": g.name, "is_superuser": g.isSuperuser,
		"attributes": cloneMap(g.attributes), "group_uuid": g.uuid}
}

// groupJSON is the schema's Group.
func (s *Server) groupJSON(g *group, o groupOpts, ix *groupIndex) map[string]any {
	members, children := s.groupRelations(ix, g)
	userPKs := make([]int, 0, len(members))
	usersObj := make([]any, 0, len(members))
	for _, u := range members {
		userPKs = append(userPKs, u.pk)
		var lastLogin any
		if u.lastLogin != nil {
			lastLogin = ts(*u.lastLogin)
		}
		usersObj = append(usersObj, map[string]any{"pk": u.pk, "username": u.username, "name": u.name,
			"is_active": u.isActive, "last_login": lastLogin, "email": u.email,
			"attributes": cloneMap(u.attributes), "uid": s.m.uid(u)})
	}
	parentPKs := make([]string, 0, len(g.parents))
	parentsObj := make([]any, 0, len(g.parents))
	for _, p := range g.parents {
		parentPKs = append(parentPKs, p.uuid)
		parentsObj = append(parentsObj, relatedGroupJSON(p))
	}
	childPKs := []string{}
	childrenObj := []any{}
	for _, c := range children {
		childPKs = append(childPKs, c.uuid)
		childrenObj = append(childrenObj, relatedGroupJSON(c))
	}
	rolePKs, rolesObj := roleList(g.roles)
	out := map[string]any{
		"pk": g.uuid, "num_pk": g.numPK, "name": g.name, "is_superuser": g.isSuperuser,
		"parents": parentPKs, "parents_obj": nil, "users": userPKs, "users_obj": nil,
		"attributes": cloneMap(g.attributes), "roles": rolePKs, "roles_obj": rolesObj,
		"inherited_roles_obj": nil, "children": childPKs, "children_obj": nil,
	}
	if o.users {
		out["users_obj"] = usersObj
	}
	if o.parents {
		out["parents_obj"] = parentsObj
	}
	if o.children {
		out["children_obj"] = childrenObj
	}
	if o.inherited {
		var inherited []*role
		seen := map[*role]bool{}
		var walk func(*group)
		walk = func(x *group) {
			for _, p := range x.parents {
				for _, r := range p.roles {
					if !seen[r] {
						seen[r] = true
						inherited = append(inherited, r)
					}
				}
				walk(p)
			}
		}
		walk(g)
		_, objs := roleList(inherited)
		out["inherited_roles_obj"] = objs
	}
	return out
}

func (s *Server) handleGroup(w http.ResponseWriter, r *http.Request) {
	rc := requestContext(r)
	all, self, ok := s.directoryScope(rc)
	if !ok {
		writeError(w, http.StatusForbidden, "You do not have permission to perform this action.")
		return
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, g := range s.m.groups {
		if g.uuid == r.PathValue("uuid") && (all || containsPtr(s.groupMembers(g), self)) {
			q := r.URL.Query()
			writeJSON(w, http.StatusOK, s.groupJSON(g, groupOpts{users: boolParam(q, "include_users", true),
				parents: boolParam(q, "include_parents", false), children: boolParam(q, "include_children", false)}, nil))
			return
		}
	}
	writeError(w, http.StatusNotFound, "No Group matches the given query.")
}

// handleCheckAccess answers LDAPCheckAccess for the request's user
// (normally the session a bind flow created).
func (s *Server) handleCheckAccess(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	p, access, ok := s.accessCheck(w, r, kindLDAP, "No LDAP Provider matches the given query.")
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"has_search_permission": s.m.hasPermission(requestContext(r).user, "authentik_providers_ldap.search_full_directory", p),
		"access":                access,
	})
}

// accessCheck is the part of the LDAP and RADIUS check_access endpoints
// they share: provider {id} of kind, its application (or app_slug's), and
// the policy result for the request's user as the "access" object. It
// answers 404 itself, with notFound for a missing provider, and reports
// false then. s.mu must be held.
func (s *Server) accessCheck(w http.ResponseWriter, r *http.Request, kind, notFound string) (*provider, map[string]any, bool) {
	id, err := strconv.Atoi(r.PathValue("id"))
	var p *provider
	for _, x := range s.m.providers {
		if err == nil && x.pk == id && x.kind == kind {
			p = x
		}
	}
	if p == nil {
		writeError(w, http.StatusNotFound, notFound)
		return nil, nil, false
	}
	app, _ := s.m.appOf(p)
	if slug := r.URL.Query().Get("app_slug"); slug != "" {
		app = nil
		for _, a := range s.m.apps {
			if a.slug == slug {
				app = a
			}
		}
	}
	if app == nil {
		writeError(w, http.StatusNotFound, "No Application matches the given query.")
		return nil, nil, false
	}
	passing, msgs := s.m.canAccess(requestContext(r).user, app)
	if msgs == nil {
		msgs = []string{}
	}
	return p, map[string]any{"passing": passing, "messages": msgs, "log_messages": []any{}}, true
}
