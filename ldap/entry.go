package ldap

import (
	"encoding/json"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// attribute is one attribute of an entry as searches and filters read it.
// Entries do not hold attributes in this form (see packedAttr); an
// attribute is a view made on demand, sharing the entry's values.
type attribute struct {
	Name   string
	Values []string
	// Operational attributes are returned for "+" or by name, not for "*".
	Operational bool
}

// entry is one directory entry, built once and then read-only: searches
// share entries between goroutines without copying.
type entry struct {
	DN  string
	Key string // dnKey of DN
	tab *valueTable
	// The attributes are n from at in tab.attrs, addressed as values are
	// (chunk<<chunkShift | offset): 8 bytes where a slice takes 24, in
	// an entry of 48 bytes.
	at uint32
	// n counts the attributes; metaFlag marks the root DSE and the
	// subschema entry, whose attributes are all selected by "+" as well as
	// by "*".
	n uint32
}

const metaFlag = 1 << 31

// attrs returns e's attributes.
func (e *entry) attrs() []packedAttr {
	n := e.n &^ metaFlag
	if n == 0 {
		return nil
	}
	c := e.tab.attrs[e.at>>chunkShift]
	off := e.at & chunkMask
	return c[off : off+n : off+n]
}

// meta reports whether e is the root DSE or the subschema entry.
func (e *entry) meta() bool { return e.n&metaFlag != 0 }

// packedAttr is an attribute as an entry stores it: 8 bytes instead of
// the 48 of an attribute. A million-user directory has 26 million of them
// (17 on a user entry, 9 on its virtual group), so the header size decides
// much of the directory's memory.
//
// off locates the first value in the table (see valueTable); info holds
// the operational flag (bit 31), the name's index in valueTable.names
// (bits 12-30) and the number of values (bits 0-11). A list of more values
// than fit there has a chunk of its own and is the whole chunk. An entry
// never holds an attribute without values, so n is never 0.
type packedAttr struct{ off, info uint32 }

const (
	opFlag    = 1 << 31
	nameShift = 12
	nameMask  = 1<<19 - 1
	countMask = 1<<nameShift - 1
	// wholeChunk as the count means the list is its chunk.
	wholeChunk = countMask
	// nameEscape as the name means the name did not fit in the table's
	// index (more than half a million distinct names in one snapshot):
	// it is then the first of the attribute's values, the rest are its
	// values.
	nameEscape = nameMask
	// Chunks are addressed by off>>chunkShift; a chunk holds at most
	// 1<<chunkShift values unless it holds one long list alone.
	chunkShift = 15
	chunkMask  = 1<<chunkShift - 1
)

func (a packedAttr) name() uint32 { return a.info >> nameShift & nameMask }
func (a packedAttr) op() bool     { return a.info&opFlag != 0 }

// valueRef locates a value list in a valueTable while a builder fills it:
// n values from off. Entries that repeat a list (a user's name under cn,
// sAMAccountName and in its virtual group; the object classes of every
// user) share it.
type valueRef struct{ off, n uint32 }

// valueTable holds the attribute names and values of the entries of one
// snapshot (or of one stand-alone entry). It grows while a builder fills it
// and is read-only afterwards.
type valueTable struct {
	names []string
	// keys holds attrKey of each name: entries are searched by key, so
	// commonName, 2.5.4.3 and cn find the same attribute.
	keys   []string
	chunks [][]string
	// attrs holds the attributes of the entries, each entry's together.
	attrs [][]packedAttr
}

func (t *valueTable) values(r valueRef) []string {
	if r.n == 0 {
		return emptyValues
	}
	c := t.chunks[r.off>>chunkShift]
	off := r.off & chunkMask
	// The three-index slice keeps an append by a reader from writing into
	// the next list.
	return c[off : off+r.n : off+r.n]
}

// packed returns the values of a packed attribute, with the name first
// when it is escaped.
func (t *valueTable) packed(a packedAttr) []string {
	c := t.chunks[a.off>>chunkShift]
	n := a.info & countMask
	if n == wholeChunk {
		return c[:len(c):len(c)]
	}
	off := a.off & chunkMask
	return c[off : off+n : off+n]
}

// nameOf returns the name of a packed attribute and its values.
func (t *valueTable) nameOf(a packedAttr) (name string, vals []string) {
	vals = t.packed(a)
	if a.name() == nameEscape {
		return vals[0], vals[1:]
	}
	return t.names[a.name()], vals
}

// len is the number of attributes of e.
func (e *entry) len() int { return int(e.n &^ metaFlag) }

// attr returns e's i-th attribute.
func (e *entry) attr(i int) attribute {
	a := e.attrs()[i]
	name, vals := e.tab.nameOf(a)
	return attribute{Name: name, Values: vals, Operational: a.op()}
}

// attrName returns the name of e's i-th attribute and whether it is
// operational, without building its value list.
func (e *entry) attrName(i int) (string, bool) {
	a := e.attrs()[i]
	if n := a.name(); n != nameEscape {
		return e.tab.names[n], a.op()
	}
	return e.tab.packed(a)[0], a.op()
}

// attrKey returns the key (attrKey) of e's i-th attribute.
func (e *entry) attrKey(i int) string {
	a := e.attrs()[i]
	if n := a.name(); n != nameEscape {
		return e.tab.keys[n]
	}
	return attrKey(e.tab.packed(a)[0])
}

// attrValues returns the values of e's i-th attribute.
func (e *entry) attrValues(i int) []string {
	a := e.attrs()[i]
	if a.name() != nameEscape {
		return e.tab.packed(a)
	}
	return e.tab.packed(a)[1:]
}

// find returns the position of the attribute with key (see attrKey).
func (e *entry) find(key string) (int, bool) {
	for i, a := range e.attrs() {
		if n := a.name(); n != nameEscape && e.tab.keys[n] == key || n == nameEscape && e.attrKey(i) == key {
			return i, true
		}
	}
	return 0, false
}

// get returns the attribute an attribute description names: by any name
// or OID of its type, ignoring case.
func (e *entry) get(desc string) (attribute, bool) {
	if i, ok := e.find(attrKey(desc)); ok {
		return e.attr(i), true
	}
	return attribute{}, false
}

// has reports whether e has the attribute an attribute description names.
func (e *entry) has(desc string) bool {
	_, ok := e.find(attrKey(desc))
	return ok
}

// newEntry makes a stand-alone entry with a table of its own, for the few
// entries built outside a snapshot's builder (root DSE, subschema).
func newEntry(dn, key string, meta bool, attrs []attribute) *entry {
	b := newBuilder(nil, 1)
	e := b.entry()
	*e = entry{DN: dn, Key: key, tab: b.tab}
	if meta {
		e.n = metaFlag
	}
	b.attributes(e, len(attrs))
	for _, a := range attrs {
		b.add(e, a.Name, a.Operational, b.list(a.Values))
	}
	return e
}

// builder makes the entries of one snapshot. It carves values, attribute
// lists and entries out of shared chunks, and stores once what many
// entries repeat (group DNs, timestamps, a user's name under three
// attributes, object classes), so a 100,000-user directory costs a few
// large allocations and no duplicate strings. What it hands out is
// read-only: entries are shared by every search.
type builder struct {
	p        *providerConfig
	tab      *valueTable
	names    map[string]uint32
	shared   map[*string]valueRef // lists every entry of a kind repeats
	entries  []entry
	groupDNs map[string]string
	times    map[int64]valueRef
	// built has, for each user entry made, the values its virtual group
	// and its groups' member lists repeat; users finds them by username.
	built []userValues
	users map[string]int32
	chunk int
	cur   int // the chunk lists are added to, -1 before the first
	// The attribute chunk entries get room in (-1 before the first), how
	// much of it is taken, and the entry being filled with the room it has.
	acur, aused int
	filling     *entry
	room        int
}

type userValues struct {
	dn, username, uid, gid valueRef
	dnString, name         string
}

// newBuilder makes a builder for about size users and groups. Chunks grow
// with size up to a bound, so the one-user snapshot of a restricted search
// allocates little and a large directory allocates a few big blocks.
func newBuilder(p *providerConfig, size int) *builder {
	return &builder{p: p, tab: &valueTable{}, names: map[string]uint32{}, shared: map[*string]valueRef{},
		groupDNs: map[string]string{}, times: map[int64]valueRef{},
		users: make(map[string]int32, size), chunk: min(max(size, 1), 4096), cur: -1, acur: -1}
}

// list stores vals in the table and returns where. A list that does not
// fit in the current chunk starts a new one; a list too long for a
// packedAttr's count gets a chunk of its own, exactly as long as it.
func (b *builder) list(vals []string) valueRef {
	t := b.tab
	n := len(vals)
	if n >= wholeChunk {
		c := make([]string, n)
		copy(c, vals)
		t.chunks = append(t.chunks, c)
		return valueRef{off: uint32(len(t.chunks)-1) << chunkShift, n: uint32(n)}
	}
	if b.cur < 0 || cap(t.chunks[b.cur])-len(t.chunks[b.cur]) < n {
		// Chunks double from small (a stand-alone entry) up to the bound.
		size := min(1<<chunkShift, max(8*b.chunk, 8<<min(len(t.chunks), chunkShift)))
		t.chunks = append(t.chunks, make([]string, 0, size))
		b.cur = len(t.chunks) - 1
	}
	c := t.chunks[b.cur]
	off := len(c)
	t.chunks[b.cur] = append(c, vals...)
	return valueRef{off: uint32(b.cur)<<chunkShift | uint32(off), n: uint32(n)}
}

// one stores a single value.
func (b *builder) one(v string) valueRef {
	var a [1]string
	a[0] = v
	return b.list(a[:])
}

// sharedList stores a package-level list (object classes, TRUE, FALSE)
// once per table.
func (b *builder) sharedList(vals []string) valueRef {
	if len(vals) == 0 {
		return valueRef{}
	}
	r, ok := b.shared[&vals[0]]
	if !ok {
		r = b.list(vals)
		b.shared[&vals[0]] = r
	}
	return r
}

// name returns the table index of an attribute name, or nameEscape once
// the table's index is full.
func (b *builder) name(s string) uint32 {
	i, ok := b.names[s]
	if !ok {
		if len(b.tab.names) >= nameEscape {
			return nameEscape
		}
		i = uint32(len(b.tab.names))
		b.tab.names = append(b.tab.names, s)
		b.tab.keys = append(b.tab.keys, attrKey(s))
		b.names[s] = i
	}
	return i
}

// key returns the key of the name with table index n.
func (b *builder) key(n uint32, name string) string {
	if n == nameEscape {
		return attrKey(name)
	}
	return b.tab.keys[n]
}

// attributes gives e room for n attributes, moving those it has.
func (b *builder) attributes(e *entry, n int) {
	t := b.tab
	old := e.attrs()
	var at uint32
	if n > 1<<chunkShift {
		t.attrs = append(t.attrs, make([]packedAttr, n))
		at = uint32(len(t.attrs)-1) << chunkShift
	} else {
		if b.acur < 0 || len(t.attrs[b.acur])-b.aused < n {
			// A user and its virtual group have 26 attributes.
			size := min(1<<chunkShift, max(n, 26*b.chunk, 8<<min(len(t.attrs), chunkShift)))
			t.attrs = append(t.attrs, make([]packedAttr, size))
			b.acur, b.aused = len(t.attrs)-1, 0
		}
		at = uint32(b.acur)<<chunkShift | uint32(b.aused)
		b.aused += n
	}
	e.at = at
	c := t.attrs[at>>chunkShift]
	copy(c[at&chunkMask:], old)
	b.filling, b.room = e, n
}

func (b *builder) entry() *entry {
	if len(b.entries) == cap(b.entries) {
		b.entries = make([]entry, 0, 2*b.chunk)
	}
	b.entries = append(b.entries, entry{tab: b.tab})
	return &b.entries[len(b.entries)-1]
}

// add appends an attribute to e unless it has one of that type (by any of
// the type's names): custom attributes come first and win over built-in
// ones, as in authentik.
func (b *builder) add(e *entry, name string, op bool, r valueRef) {
	n := b.name(name)
	if _, ok := e.find(b.key(n, name)); ok {
		return
	}
	b.putName(e, n, name, op, r)
}

// put appends an attribute to e without looking for one of that type.
func (b *builder) put(e *entry, name string, op bool, r valueRef) {
	b.putName(e, b.name(name), name, op, r)
}

// putName appends the attribute with table name n, unless it has no
// values: RFC 4511 4.1.7 allows an empty value set only in a typesOnly
// search, so an entry never holds an attribute without values (memberOf
// of a user in no group, supportedSASLMechanisms). Nor does it hold one
// whose only value is the empty string, which directory strings forbid
// (RFC 4517 3.3.6), such as mail of a user without email; DN attributes
// keep it, since "" is the root DSE's DN.
func (b *builder) putName(e *entry, n uint32, name string, op bool, r valueRef) {
	if r.n == 0 || r.n == 1 && b.tab.values(r)[0] == "" && attributeKind(b.key(n, name)) != matchDN {
		return
	}
	if n == nameEscape {
		r = b.list(append([]string{name}, b.tab.values(r)...))
	}
	info := min(r.n, wholeChunk) | n<<nameShift
	if op {
		info |= opFlag
	}
	n = uint32(e.len())
	if b.filling != e || int(n) == b.room {
		b.attributes(e, 2*int(n)+4)
	}
	b.tab.attrs[e.at>>chunkShift][e.at&chunkMask+n] = packedAttr{off: r.off, info: info}
	e.n++
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
func (b *builder) time(t time.Time) valueRef {
	k := t.Unix()
	v, ok := b.times[k]
	if !ok {
		v = b.one(generalizedTime(t))
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
func (b *builder) userEntry(u *user) *entry {
	p := b.p
	dn := p.userDN(u.Username)
	e := b.entry()
	e.DN, e.Key = dn, sameOr(dn, p.userKey(u.Username))
	custom := flattenAttributes(u.Attributes, u.Username)
	b.attributes(e, len(custom)+17)
	for _, a := range custom {
		b.put(e, a.Name, false, b.list(a.Values))
	}
	uid, gid := p.userNumbers(u)
	var memberOf valueRef
	if len(u.Groups) > 0 {
		dns := make([]string, len(u.Groups))
		for i, g := range u.Groups {
			dns[i] = b.groupDN(g.Name)
		}
		memberOf = b.list(dns)
	}
	username, name := b.one(u.Username), b.one(u.Name)
	uidNumber := b.one(uid)
	gidNumber := uidNumber
	if gid != uid {
		gidNumber = b.one(gid)
	}
	b.add(e, "cn", false, username)
	uidValue := b.one(u.UID)
	b.add(e, "uid", false, uidValue)
	b.add(e, "sAMAccountName", false, username)
	b.add(e, "name", false, name)
	b.add(e, "displayName", false, name)
	b.add(e, "sn", false, name)
	// authentik sends one empty value for a user without email; an empty
	// directory string is invalid (RFC 4517 3.3.6), so mail is left out.
	b.add(e, "mail", false, b.one(u.Email))
	b.add(e, "objectClass", false, b.sharedList(userClasses))
	b.add(e, "uidNumber", false, uidNumber)
	b.add(e, "gidNumber", false, gidNumber)
	b.add(e, "homeDirectory", false, b.one("/home/"+u.Username))
	b.add(e, "memberOf", false, memberOf)
	b.add(e, "ak-active", false, b.sharedList(boolValue(u.Active)))
	b.add(e, "ak-superuser", false, b.sharedList(boolValue(u.Superuser)))
	if !u.PwdChanged.IsZero() {
		b.add(e, "pwdChangedTime", true, b.time(u.PwdChanged))
	}
	if !u.DateJoined.IsZero() {
		b.add(e, "createTimestamp", true, b.time(u.DateJoined))
	}
	if !u.LastUpdated.IsZero() {
		b.add(e, "modifyTimestamp", true, b.time(u.LastUpdated))
	}
	b.users[u.Username] = int32(len(b.built))
	b.built = append(b.built, userValues{dn: b.one(e.DN), username: username, uid: uidValue, gid: gidNumber,
		dnString: e.DN, name: u.Username})
	return e
}

// groupGID is a group's gidNumber.
func (p *providerConfig) groupGID(g *group) string {
	if v, ok := overrideNumber(g.Attributes, "gidNumber"); ok {
		return v
	}
	return strconv.Itoa(p.GIDStart + g.NumPK)
}

// groupEntry builds a group's entry. A restricted view passes groups
// whose members, parents and children it has already reduced.
func (b *builder) groupEntry(g *group) *entry {
	p := b.p
	dn := b.groupDN(g.Name)
	e := b.entry()
	e.DN, e.Key = dn, sameOr(dn, p.groupKey(g.Name))
	custom := flattenAttributes(g.Attributes, "")
	b.attributes(e, len(custom)+9)
	for _, a := range custom {
		b.put(e, a.Name, false, b.list(a.Values))
	}
	member := make([]string, 0, len(g.Members)+len(g.Children))
	memberUID := make([]string, 0, len(g.Members))
	for _, m := range g.Members {
		// Members share the strings of their user entries when the
		// snapshot has them.
		if i, ok := b.users[m.Username]; ok {
			us := &b.built[i]
			member = append(member, us.dnString)
			memberUID = append(memberUID, us.name)
			continue
		}
		member = append(member, p.userDN(m.Username))
		memberUID = append(memberUID, m.Username)
	}
	for _, c := range g.Children {
		member = append(member, b.groupDN(c))
	}
	memberOf := make([]string, 0, len(g.Parents))
	for _, par := range g.Parents {
		memberOf = append(memberOf, b.groupDN(par))
	}
	name := b.one(g.Name)
	b.add(e, "cn", false, name)
	b.add(e, "uid", false, b.one(g.PK))
	b.add(e, "sAMAccountName", false, name)
	b.add(e, "gidNumber", false, b.one(p.groupGID(g)))
	b.add(e, "member", false, b.list(member))
	// memberUid lets RFC 2307 clients (nslcd, sssd) list members without
	// parsing DNs; authentik lacks it (goauthentik/authentik#15722).
	b.add(e, "memberUid", false, b.list(memberUID))
	b.add(e, "memberOf", false, b.list(memberOf))
	b.add(e, "objectClass", false, b.sharedList(groupClasses))
	b.add(e, "ak-superuser", false, b.sharedList(boolValue(g.Superuser)))
	return e
}

// virtualGroupEntry makes the virtual group of the i-th user entry
// built, sharing that entry's values.
func (b *builder) virtualGroupEntry(i int) *entry {
	p := b.p
	us := &b.built[i]
	dn := p.vgroupDN(us.name)
	e := b.entry()
	e.DN, e.Key = dn, sameOr(dn, p.vgroupKey(us.name))
	b.attributes(e, 9)
	b.put(e, "cn", false, us.username)
	b.put(e, "uid", false, us.uid)
	b.put(e, "sAMAccountName", false, us.username)
	b.put(e, "gidNumber", false, us.gid)
	b.put(e, "member", false, us.dn)
	b.put(e, "memberUid", false, us.username)
	b.put(e, "memberOf", false, valueRef{})
	b.put(e, "objectClass", false, b.sharedList(vgroupClasses))
	b.put(e, "ak-superuser", false, b.sharedList(falseValue))
	return e
}

// containerEntries are ou=users, ou=groups and ou=virtual-groups.
func (b *builder) containerEntries() []*entry {
	p := b.p
	mk := func(dn, key, name string) *entry {
		e := b.entry()
		e.DN, e.Key = dn, key
		b.attributes(e, 4)
		b.put(e, "objectClass", false, b.sharedList(containerClasses))
		b.put(e, "ou", false, b.one(name))
		b.put(e, "commonName", false, b.one(name))
		b.put(e, "distinguishedName", false, b.one(dn))
		return e
	}
	return []*entry{
		mk(p.usersDN, p.usersKey, "users"),
		mk(p.groupsDN, p.groupsKey, "groups"),
		mk(p.vgroupsDN, p.vgroupsKey, "virtual-groups"),
	}
}

// baseEntry is the entry at the provider's base DN: the root DSE's
// attributes under a DN of its own, so without entryDN, and with the
// base's naming attribute first.
func (p *providerConfig) baseEntry(version string) *entry {
	attrs := slices.DeleteFunc(rootDSEAttributes([]string{strings.ToLower(p.BaseDN)}, version),
		func(a attribute) bool { return a.Name == "entryDN" })
	if dn, err := parseDN(p.BaseDN); err == nil && len(dn.RDNs[0].Attributes) == 1 {
		a := dn.RDNs[0].Attributes[0]
		attrs = append([]attribute{{Name: a.Type, Values: []string{a.Value}}}, attrs...)
		if strings.EqualFold(a.Type, "dc") {
			for i := range attrs {
				if attrs[i].Name == "objectClass" {
					attrs[i].Values = []string{"top", "domain"}
				}
			}
		}
	}
	return newEntry(p.BaseDN, p.baseKey, false, attrs)
}

// flattenAttributes turns authentik's JSON attributes into LDAP
// attributes. Keys lose "." and get "-" for "/" (authentik's mapping);
// nested objects become "parent-child" keys instead of authentik's Go map
// dump; lists give one value per element, null elements and empty strings
// are dropped, and a null or empty attribute is left out (LDAP has no
// empty attributes). For users, "%s" in a value becomes the username. Keys
// are sorted so entries are stable.
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
		// An empty string is no value: directory strings are never empty.
		return x, x != ""
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
