package ldap

import (
	"encoding/json"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// attribute is one attribute of an entry.
type attribute struct {
	Name   string
	Values []string
	// Operational attributes are returned for "+" or by name, not for "*".
	Operational bool
}

// entry is one directory entry, built once and then read-only: searches
// share entries between goroutines without copying.
type entry struct {
	DN         string
	Key        string // dnKey of DN
	Attributes []attribute
	// meta marks the root DSE and the subschema entry, whose attributes are
	// all selected by "+" as well as by "*".
	meta bool
}

// get returns the named attribute (case-insensitive), or nil.
func (e *entry) get(name string) *attribute {
	for i := range e.Attributes {
		if strings.EqualFold(e.Attributes[i].Name, name) {
			return &e.Attributes[i]
		}
	}
	return nil
}

// add appends an attribute unless one of that name exists: custom
// attributes come first and win over built-in ones, as in authentik.
func (e *entry) add(name string, op bool, values []string) {
	if e.get(name) != nil {
		return
	}
	e.Attributes = append(e.Attributes, attribute{Name: name, Values: values, Operational: op})
}

// valueArena hands out one-value slices from a shared backing array, so an
// entry's single values cost one allocation instead of one each: at
// 100,000 users that is millions of allocations and tens of MiB fewer.
type valueArena []string

func newArena(n int) *valueArena { a := make(valueArena, 0, n); return &a }

// one returns []string{v} backed by the arena. The three-index slice keeps
// a later append to the result from overwriting the arena.
func (a *valueArena) one(v string) []string {
	if len(*a) == cap(*a) {
		*a = make(valueArena, 0, 16)
	}
	*a = append(*a, v)
	n := len(*a)
	return (*a)[n-1 : n : n]
}

// sameOr returns a when it equals b, so equal DN and key strings share
// memory.
func sameOr(a, b string) string {
	if a == b {
		return a
	}
	return b
}

// Object classes, shared by every entry (never modified).
var (
	userClasses = []string{"top", "person", "organizationalPerson", "inetOrgPerson", "user",
		"posixAccount", "goauthentik.io/ldap/user"}
	groupClasses = []string{"group", "groupOfUniqueNames", "groupOfNames",
		"goauthentik.io/ldap/group", "posixGroup"}
	vgroupClasses = []string{"group", "groupOfUniqueNames", "groupOfNames",
		"goauthentik.io/ldap/virtual-group", "posixGroup"}
	containerClasses = []string{"top", "nsContainer"}
	emptyValues      = []string{}
	falseValue       = []string{"FALSE"}
)

// generalizedTime formats t as GeneralizedTime in UTC with seconds.
func generalizedTime(t time.Time) string {
	return t.UTC().Format("20060102150405Z")
}

func ldapBool(b bool) string {
	if b {
		return "TRUE"
	}
	return "FALSE"
}

// overrideNumber reads a uidNumber/gidNumber override from attributes. A
// string is used as it is (authentik's behaviour); unlike authentik, a JSON
// integer works too (goauthentik/authentik#9533).
func overrideNumber(attrs map[string]any, key string) (string, bool) {
	switch v := attrs[key].(type) {
	case string:
		if v != "" {
			return v, true
		}
	case float64:
		if v == float64(int64(v)) {
			return strconv.FormatInt(int64(v), 10), true
		}
	case json.Number:
		return v.String(), true
	}
	return "", false
}

// userNumbers returns a user's uidNumber and gidNumber.
func (p *providerConfig) userNumbers(u *user) (uid, gid string) {
	uid, ok := overrideNumber(u.Attributes, "uidNumber")
	if !ok {
		uid = strconv.Itoa(p.UIDStart + u.PK)
	}
	gid, ok = overrideNumber(u.Attributes, "gidNumber")
	if !ok {
		gid = uid
	}
	return uid, gid
}

// userEntry builds a user's entry as authentik's outpost does.
func (p *providerConfig) userEntry(u *user) *entry {
	dn := p.userDN(u.Username)
	e := &entry{DN: dn, Key: sameOr(dn, p.userKey(u.Username))}
	custom := flattenAttributes(u.Attributes, u.Username)
	e.Attributes = make([]attribute, 0, len(custom)+17)
	e.Attributes = append(e.Attributes, custom...)
	v := newArena(16)
	uid, gid := p.userNumbers(u)
	memberOf := make([]string, 0, len(u.Groups))
	for _, g := range u.Groups {
		memberOf = append(memberOf, p.groupDN(g.Name))
	}
	e.add("cn", false, v.one(u.Username))
	e.add("uid", false, v.one(u.UID))
	e.add("sAMAccountName", false, v.one(u.Username))
	e.add("name", false, v.one(u.Name))
	e.add("displayName", false, v.one(u.Name))
	e.add("sn", false, v.one(u.Name))
	// authentik sends one empty value for a user without email; clients
	// compare against that, so it is kept.
	e.add("mail", false, v.one(u.Email))
	e.add("objectClass", false, userClasses)
	e.add("uidNumber", false, v.one(uid))
	e.add("gidNumber", false, v.one(gid))
	e.add("homeDirectory", false, v.one("/home/"+u.Username))
	e.add("memberOf", false, memberOf)
	e.add("ak-active", false, v.one(ldapBool(u.Active)))
	e.add("ak-superuser", false, v.one(ldapBool(u.Superuser)))
	for _, ts := range []struct {
		name string
		t    time.Time
	}{{"pwdChangedTime", u.PwdChanged}, {"createTimestamp", u.DateJoined}, {"modifyTimestamp", u.LastUpdated}} {
		if !ts.t.IsZero() {
			e.add(ts.name, true, v.one(generalizedTime(ts.t)))
		}
	}
	return e
}

// groupGID is a group's gidNumber.
func (p *providerConfig) groupGID(g *group) string {
	if v, ok := overrideNumber(g.Attributes, "gidNumber"); ok {
		return v
	}
	return strconv.Itoa(p.GIDStart + g.NumPK)
}

// groupEntry builds a group's entry. members are the users to list; the
// caller passes a reduced list for searchers without full access.
func (p *providerConfig) groupEntry(g *group, members []memberRef, parents, children []string) *entry {
	dn := p.groupDN(g.Name)
	e := &entry{DN: dn, Key: sameOr(dn, p.groupKey(g.Name))}
	e.Attributes = flattenAttributes(g.Attributes, "")
	member := make([]string, 0, len(members)+len(children))
	memberUID := make([]string, 0, len(members))
	for _, m := range members {
		member = append(member, p.userDN(m.Username))
		memberUID = append(memberUID, m.Username)
	}
	for _, c := range children {
		member = append(member, p.groupDN(c))
	}
	memberOf := make([]string, 0, len(parents))
	for _, par := range parents {
		memberOf = append(memberOf, p.groupDN(par))
	}
	e.add("cn", false, []string{g.Name})
	e.add("uid", false, []string{g.PK})
	e.add("sAMAccountName", false, []string{g.Name})
	e.add("gidNumber", false, []string{p.groupGID(g)})
	e.add("member", false, member)
	// memberUid lets RFC 2307 clients (nslcd, sssd) list members without
	// parsing DNs; authentik lacks it (goauthentik/authentik#15722).
	e.add("memberUid", false, memberUID)
	e.add("memberOf", false, memberOf)
	e.add("objectClass", false, groupClasses)
	e.add("ak-superuser", false, []string{ldapBool(g.Superuser)})
	return e
}

// virtualGroupEntry is the per-user group carrying the user's gidNumber.
func (p *providerConfig) virtualGroupEntry(u *user) *entry {
	return p.virtualGroupEntryDN(u, p.userDN(u.Username))
}

// virtualGroupEntryDN is virtualGroupEntry with the user's DN already
// made, so the snapshot shares that string.
func (p *providerConfig) virtualGroupEntryDN(u *user, userDN string) *entry {
	_, gid := p.userNumbers(u)
	dn := p.vgroupDN(u.Username)
	v := newArena(6)
	return &entry{DN: dn, Key: sameOr(dn, p.vgroupKey(u.Username)), Attributes: []attribute{
		{Name: "cn", Values: v.one(u.Username)},
		{Name: "uid", Values: v.one(u.UID)},
		{Name: "sAMAccountName", Values: v.one(u.Username)},
		{Name: "gidNumber", Values: v.one(gid)},
		{Name: "member", Values: v.one(userDN)},
		{Name: "memberUid", Values: v.one(u.Username)},
		{Name: "memberOf", Values: emptyValues},
		{Name: "objectClass", Values: vgroupClasses},
		{Name: "ak-superuser", Values: falseValue},
	}}
}

// containerEntries are ou=users, ou=groups and ou=virtual-groups.
func (p *providerConfig) containerEntries() []*entry {
	mk := func(dn, key, name string) *entry {
		return &entry{DN: dn, Key: key, Attributes: []attribute{
			{Name: "objectClass", Values: containerClasses},
			{Name: "ou", Values: []string{name}},
			{Name: "commonName", Values: []string{name}},
			{Name: "distinguishedName", Values: []string{dn}},
		}}
	}
	return []*entry{
		mk(p.usersDN, p.usersKey, "users"),
		mk(p.groupsDN, p.groupsKey, "groups"),
		mk(p.vgroupsDN, p.vgroupsKey, "virtual-groups"),
	}
}

// baseEntry is the entry at the provider's base DN.
func (p *providerConfig) baseEntry(version string) *entry {
	e := rootDSE([]string{strings.ToLower(p.BaseDN)}, version)
	e.DN = p.BaseDN
	e.Key = p.baseKey
	e.meta = false
	// The base entry is not the root DSE: it has a DN of its own.
	e.Attributes = slices.DeleteFunc(e.Attributes, func(a attribute) bool { return a.Name == "entryDN" })
	if dn, err := parseDN(p.BaseDN); err == nil && len(dn.RDNs[0].Attributes) == 1 {
		a := dn.RDNs[0].Attributes[0]
		e.Attributes = append([]attribute{{Name: a.Type, Values: []string{a.Value}}}, e.Attributes...)
		if strings.EqualFold(a.Type, "dc") {
			e.get("objectClass").Values = []string{"top", "domain"}
		}
	}
	return e
}

// flattenAttributes turns authentik's JSON attributes into LDAP
// attributes. Keys lose "." and get "-" for "/" (authentik's mapping);
// nested objects become "parent-child" keys instead of authentik's Go map
// dump; lists give one value per element, null elements are dropped, and a
// null or empty attribute is left out (LDAP has no empty attributes). For
// users, "%s" in a value becomes the username. Keys are sorted so entries
// are stable.
func flattenAttributes(attrs map[string]any, username string) []attribute {
	var out []attribute
	var walk func(prefix string, m map[string]any, depth int)
	walk = func(prefix string, m map[string]any, depth int) {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			name := prefix + attributeName(k)
			if name == "" {
				continue
			}
			if sub, ok := m[k].(map[string]any); ok && depth < 4 {
				walk(name+"-", sub, depth+1)
				continue
			}
			vals := attributeValues(m[k], username)
			if len(vals) > 0 {
				out = append(out, attribute{Name: name, Values: vals})
			}
		}
	}
	walk("", attrs, 0)
	return out
}

func attributeName(k string) string {
	return strings.ReplaceAll(strings.ReplaceAll(k, "/", "-"), ".", "")
}

func attributeValues(v any, username string) []string {
	if list, ok := v.([]any); ok {
		out := make([]string, 0, len(list))
		for _, item := range list {
			if s, ok := scalarString(item, username); ok {
				out = append(out, s)
			}
		}
		return out
	}
	if s, ok := scalarString(v, username); ok {
		return []string{s}
	}
	return nil
}

func scalarString(v any, username string) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", false
	case string:
		if username != "" {
			x = strings.ReplaceAll(x, "%s", username)
		}
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case json.Number:
		return x.String(), true
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return "", false
		}
		return string(b), true
	}
}
