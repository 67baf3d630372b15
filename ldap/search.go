package ldap

import (
	"strings"

	"github.com/akoutpost/akoutpost/ldap/ldapserver"
)

// Search scopes, as RFC 4511 numbers them.
const (
	scopeBase     = 0
	scopeOne      = 1
	scopeSubtree  = 2
	scopeChildren = 3 // draft-sermersheim-ldap-subordinate-scope, sent by some clients
)

// query is a search against one provider's entries.
type query struct {
	baseKey string
	scope   int
	filter  *filter
}

// inScope reports whether an entry key lies in the query's scope.
func (q *query) inScope(key string) bool {
	switch q.scope {
	case scopeBase:
		return key == q.baseKey
	case scopeOne:
		return key != q.baseKey && parentKey(key) == q.baseKey
	case scopeChildren:
		return key != q.baseKey && under(key, q.baseKey)
	}
	return under(key, q.baseKey)
}

// exists reports whether the base object of q is in s.
func (s *snapshot) exists(key string) bool {
	_, ok := s.find(key)
	return ok
}

// run calls emit for every entry of s matching q, in a stable order, until
// emit returns false.
func (s *snapshot) run(q *query, emit func(*entry) bool) {
	if q.scope == scopeBase {
		if i, ok := s.find(q.baseKey); ok && q.filter.matches(s.entries[i]) {
			emit(s.entries[i])
		}
		return
	}
	if list, ok := s.candidates(q.filter); ok {
		for _, i := range list {
			e := s.entries[i]
			if q.inScope(e.Key) && q.filter.matches(e) && !emit(e) {
				return
			}
		}
		return
	}
	for _, e := range s.entries {
		if q.inScope(e.Key) && q.filter.matches(e) && !emit(e) {
			return
		}
	}
}

// selector picks the attributes a search returns (RFC 4511 4.5.1.8):
// none listed or "*" selects user attributes, "+" operational ones, "1.1"
// alone none, and attribute descriptions select the attribute they name,
// by any name or OID of its type and ignoring case (attrKey). The
// attribute is returned under the name the entry uses, whatever the
// client asked for: OpenLDAP does the same, answering cn for commonName or
// 2.5.4.3. Like authentik, comma-separated names in one string are split.
type selector struct {
	all, allOperational bool
	keys                map[string]bool
	typesOnly           bool
}

func newSelector(attrs []string, typesOnly bool) *selector {
	s := &selector{keys: map[string]bool{}, typesOnly: typesOnly}
	listed := false
	for _, a := range attrs {
		for _, part := range strings.Split(a, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			listed = true
			switch part {
			case "*":
				s.all = true
			case "+":
				s.allOperational = true
			case "1.1":
			default:
				s.keys[attrKey(part)] = true
			}
		}
	}
	if !listed {
		s.all = true
	}
	return s
}

// apply returns e's selected attributes as a search sends them. The
// values are shared with e: callers must not modify them. Counting first
// makes the list the one allocation: this runs for every entry of every
// search.
func (s *selector) apply(e *entry) []ldapserver.Attribute {
	n := 0
	for i := range e.len() {
		if s.selects(e, i) {
			n++
		}
	}
	out := make([]ldapserver.Attribute, 0, n)
	for i := range e.len() {
		if !s.selects(e, i) {
			continue
		}
		a := e.attr(i)
		if s.typesOnly {
			a.Values = nil
		}
		out = append(out, ldapserver.Attribute{Type: a.Name, Values: a.Values})
	}
	return out
}

// selects reports whether the i-th attribute of e is returned.
func (s *selector) selects(e *entry, i int) bool {
	_, op := e.attrName(i)
	return s.all && (!op || e.meta()) ||
		s.allOperational && (op || e.meta()) ||
		len(s.keys) > 0 && s.keys[e.attrKey(i)]
}

// restrictedView is the directory as a user without the "search full
// directory" permission sees it (authentik's rule): the base and container
// entries, the user's own entry and virtual group, and the groups the user
// is a direct member of, each listing only the user as member and hiding
// its parents and children.
func restrictedView(p *providerConfig, u *user, version string) *snapshot {
	groups := make([]group, 0, len(u.Groups))
	for _, g := range u.Groups {
		groups = append(groups, group{
			PK: g.PK, NumPK: g.NumPK, Name: g.Name, Superuser: g.Superuser, Attributes: g.Attributes,
			Members: []memberRef{{PK: u.PK, Username: u.Username}},
		})
	}
	return buildSnapshot(p, []user{*u}, groups, version, false)
}

// emptyView holds only the base and container entries, for a bound user
// the directory does not (yet) know.
func emptyView(p *providerConfig, version string) *snapshot {
	return buildSnapshot(p, nil, nil, version, false)
}
