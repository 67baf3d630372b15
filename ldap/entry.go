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

// builder makes the entries of one snapshot. It carves values, attribute
// lists and entries out of shared chunks, and hands out one string or one
// value list for what many entries repeat (group DNs, timestamps, a user's
// name under three attributes), so a 100,000-user directory costs a few
// large allocations and no duplicate strings. What it hands out is
// read-only: entries are shared by every search.
type builder struct {
	p        *providerConfig
	values   []string
	attrs    []attribute
	entries  []entry
	groupDNs map[string]string
	times    map[int64][]string
	// built has, for each user entry made, the values its virtual group
	// and its groups' member lists repeat; users finds them by username.
	built []userValues
	users map[string]int32
	chunk int
}

type userValues struct{ dn, username, uid, gid []string }

// newBuilder makes a builder for about size users and groups. Chunks grow
// with size up to a bound, so the one-user snapshot of a restricted search
// allocates little and a large directory allocates a few big blocks.
func newBuilder(p *providerConfig, size int) *builder {
	return &builder{p: p, groupDNs: map[string]string{}, times: map[int64][]string{},
		users: make(map[string]int32, size), chunk: min(max(size, 1), 4096)}
}

// one returns []string{v} carved from the shared chunk. The three-index
// slice keeps a later append to the result from overwriting its neighbour.
func (b *builder) one(v string) []string {
	if len(b.values) == cap(b.values) {
		b.values = make([]string, 0, 8*b.chunk)
	}
	b.values = append(b.values, v)
	n := len(b.values)
	return b.values[n-1 : n : n]
}

// attributes returns an empty attribute list with room for n.
func (b *builder) attributes(n int) []attribute {
	if cap(b.attrs)-len(b.attrs) < n {
		// A user and its virtual group have 26 attributes.
		b.attrs = make([]attribute, 0, max(n, 26*b.chunk))
	}
	l := len(b.attrs)
	b.attrs = b.attrs[:l+n]
	return b.attrs[l : l : l+n]
}

func (b *builder) entry() *entry {
	if len(b.entries) == cap(b.entries) {
		b.entries = make([]entry, 0, 2*b.chunk)
	}
	b.entries = append(b.entries, entry{})
	return &b.entries[len(b.entries)-1]
}

func (b *builder) groupDN(name string) string {
	dn, ok := b.groupDNs[name]
	if !ok {
		dn = b.p.groupDN(name)
		b.groupDNs[name] = dn
	}
	return dn
}

// time is a timestamp value; directories made by one import share a few.
func (b *builder) time(t time.Time) []string {
	k := t.Unix()
	v, ok := b.times[k]
	if !ok {
		v = []string{generalizedTime(t)}
		b.times[k] = v
	}
	return v
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
	trueValue        = []string{"TRUE"}
)

func boolValue(b bool) []string {
	if b {
		return trueValue
	}
	return falseValue
}

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
	return newBuilder(p, 1).userEntry(u)
}

func (b *builder) userEntry(u *user) *entry {
	p := b.p
	dn := p.userDN(u.Username)
	e := b.entry()
	*e = entry{DN: dn, Key: sameOr(dn, p.userKey(u.Username))}
	custom := flattenAttributes(u.Attributes, u.Username)
	e.Attributes = b.attributes(len(custom) + 17)
	e.Attributes = append(e.Attributes, custom...)
	uid, gid := p.userNumbers(u)
	memberOf := emptyValues
	if len(u.Groups) > 0 {
		memberOf = make([]string, len(u.Groups))
		for i, g := range u.Groups {
			memberOf[i] = b.groupDN(g.Name)
		}
	}
	username, name := b.one(u.Username), b.one(u.Name)
	uidNumber, gidNumber := b.one(uid), b.one(gid)
	if gid == uid {
		gidNumber = uidNumber
	}
	e.add("cn", false, username)
	uidValue := b.one(u.UID)
	e.add("uid", false, uidValue)
	e.add("sAMAccountName", false, username)
	e.add("name", false, name)
	e.add("displayName", false, name)
	e.add("sn", false, name)
	// authentik sends one empty value for a user without email; clients
	// compare against that, so it is kept.
	e.add("mail", false, b.one(u.Email))
	e.add("objectClass", false, userClasses)
	e.add("uidNumber", false, uidNumber)
	e.add("gidNumber", false, gidNumber)
	e.add("homeDirectory", false, b.one("/home/"+u.Username))
	e.add("memberOf", false, memberOf)
	e.add("ak-active", false, boolValue(u.Active))
	e.add("ak-superuser", false, boolValue(u.Superuser))
	if !u.PwdChanged.IsZero() {
		e.add("pwdChangedTime", true, b.time(u.PwdChanged))
	}
	if !u.DateJoined.IsZero() {
		e.add("createTimestamp", true, b.time(u.DateJoined))
	}
	if !u.LastUpdated.IsZero() {
		e.add("modifyTimestamp", true, b.time(u.LastUpdated))
	}
	b.users[u.Username] = int32(len(b.built))
	b.built = append(b.built, userValues{dn: b.one(e.DN), username: username, uid: uidValue, gid: gidNumber})
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
	return newBuilder(p, 1).groupEntry(g, members, parents, children)
}

func (b *builder) groupEntry(g *group, members []memberRef, parents, children []string) *entry {
	p := b.p
	dn := b.groupDN(g.Name)
	e := b.entry()
	*e = entry{DN: dn, Key: sameOr(dn, p.groupKey(g.Name))}
	custom := flattenAttributes(g.Attributes, "")
	e.Attributes = b.attributes(len(custom) + 9)
	e.Attributes = append(e.Attributes, custom...)
	member := make([]string, 0, len(members)+len(children))
	memberUID := make([]string, 0, len(members))
	for _, m := range members {
		// Members share the strings of their user entries when the
		// snapshot has them.
		if i, ok := b.users[m.Username]; ok {
			us := &b.built[i]
			member = append(member, us.dn[0])
			memberUID = append(memberUID, us.username[0])
			continue
		}
		member = append(member, p.userDN(m.Username))
		memberUID = append(memberUID, m.Username)
	}
	for _, c := range children {
		member = append(member, b.groupDN(c))
	}
	memberOf := make([]string, 0, len(parents))
	for _, par := range parents {
		memberOf = append(memberOf, b.groupDN(par))
	}
	name := b.one(g.Name)
	e.add("cn", false, name)
	e.add("uid", false, b.one(g.PK))
	e.add("sAMAccountName", false, name)
	e.add("gidNumber", false, b.one(p.groupGID(g)))
	e.add("member", false, member)
	// memberUid lets RFC 2307 clients (nslcd, sssd) list members without
	// parsing DNs; authentik lacks it (goauthentik/authentik#15722).
	e.add("memberUid", false, memberUID)
	e.add("memberOf", false, memberOf)
	e.add("objectClass", false, groupClasses)
	e.add("ak-superuser", false, boolValue(g.Superuser))
	return e
}

// virtualGroupEntry is the per-user group carrying the user's gidNumber.
func (p *providerConfig) virtualGroupEntry(u *user) *entry {
	b := newBuilder(p, 1)
	b.userEntry(u)
	return b.virtualGroupEntry(0)
}

// virtualGroupEntry makes the virtual group of the i-th user entry
// built, sharing that entry's values.
func (b *builder) virtualGroupEntry(i int) *entry {
	p := b.p
	us := &b.built[i]
	username := us.username[0]
	dn := p.vgroupDN(username)
	e := b.entry()
	*e = entry{DN: dn, Key: sameOr(dn, p.vgroupKey(username)), Attributes: b.attributes(9)}
	e.Attributes = append(e.Attributes,
		attribute{Name: "cn", Values: us.username},
		attribute{Name: "uid", Values: us.uid},
		attribute{Name: "sAMAccountName", Values: us.username},
		attribute{Name: "gidNumber", Values: us.gid},
		attribute{Name: "member", Values: us.dn},
		attribute{Name: "memberUid", Values: us.username},
		attribute{Name: "memberOf", Values: emptyValues},
		attribute{Name: "objectClass", Values: vgroupClasses},
		attribute{Name: "ak-superuser", Values: falseValue},
	)
	return e
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
