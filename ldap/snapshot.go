package ldap

import (
	"cmp"
	"hash/maphash"
	"slices"
	"strconv"
	"strings"
)

// indexedAttributes are the attributes whose values are indexed, by key
// (attrKey), so that an equality filter on them costs the same at 100
// entries and at 100,000.
// The number is mixed into each value's hash to keep attributes apart.
var indexedAttributes = map[string]uint64{
	"cn": 1, "uid": 2, "samaccountname": 3, "mail": 4, "objectclass": 5,
	"memberof": 6, "member": 7, "memberuid": 8, "uidnumber": 9, "gidnumber": 10,
}

// snapshot is one provider's directory at one moment: every entry, built
// once, plus indexes. It is never modified after it is built, so searches
// read it without locks while a refresh builds the next one.
//
// A refresh does not build the next directory from nothing: it reuses the
// entries of the users and groups whose JSON did not change, and the
// indexes of the last full build (base), with a small overlay saying
// what changed since. Entries keep the order a full build gives them, so
// a snapshot answers every search exactly as a snapshot built from
// scratch from the same listing would.
type snapshot struct {
	prov    *providerConfig
	entries []*entry
	// base indexes the entries of the last full build; snapshots refreshed
	// from it share it.
	base *baseIndex
	overlay
	// The users and groups in the order of the listing (cached mode), its
	// generation, and how many entries refreshes built since the last
	// full build: what the next refresh starts from.
	userList  []*user
	groupList []*group
	gen       uint64
	rebuilt   int
}

// baseIndex is what a full build indexes. Positions are the build's.
type baseIndex struct {
	n int32 // entries
	// index has one slot per distinct (attribute, value key) hash, sorted
	// by hash, pointing at a posting list in post: the positions of the
	// entries holding that value, ascending. At 100,000 users there are
	// about a million values; 12 bytes each here cost a quarter of a map
	// of maps keyed by strings. Two values whose hashes collide share a list,
	// which is harmless: candidates are a superset, and every candidate is
	// checked against the filter.
	index []indexSlot
	post  []int32
	// radix[p] is where the slots whose hash begins with p start, p being
	// the hash's top bits (32-radixShift): a lookup searches a few slots
	// of one or two cache lines instead of bisecting the whole index, 24
	// steps and as many cache misses at a million users.
	radix      []int32
	radixShift uint8
	seed       maphash.Seed
	// byKey finds entries by key, users (positions in userList) by pk,
	// for access-restricted views and cached-bind checks. Maps cost about
	// five times as much at a million users, and their pointers are work
	// for every garbage collection.
	byKey posTable
	users posTable
	// The users in listing order (the user entry of userList[i] is at 4+i)
	// and the entries, of the full build (shared with its snapshot).
	userList []*user
	entries  []*entry
}

// posTable maps hashes to positions by open addressing: a power-of-two
// array of slots, each the high 32 bits of a hash beside a position + 1
// (0 is an empty slot), probed linearly from the slot the hash's low bits
// name. It holds no pointers, so the garbage collector never scans it.
// Callers compare what is at a position with what they look for.
type posTable struct {
	slots []uint64
	mask  uint64
}

func newPosTable(n int) posTable {
	size := 8
	for size < n+n/2 {
		size <<= 1
	}
	return posTable{slots: make([]uint64, size), mask: uint64(size - 1)}
}

// probe returns the slot at which to look for h the k-th time.
func (t *posTable) probe(h uint64, k uint64) uint64 { return (h + k) & t.mask }

// insert puts position p for hash h, replacing the position of an equal
// item (same reports whether the item at a position equals p's).
func (t *posTable) insert(h uint64, p int32, same func(int32) bool) {
	tag := h >> 32 << 32
	for k := uint64(0); ; k++ {
		i := t.probe(h, k)
		v := t.slots[i]
		if v == 0 || v&^0xffffffff == tag && same(int32(uint32(v))-1) {
			t.slots[i] = tag | uint64(uint32(p+1))
			return
		}
	}
}

// userHash mixes a pk (splitmix64's finaliser).
func userHash(pk int) uint64 {
	h := uint64(pk)
	h = (h ^ h>>30) * 0xbf58476d1ce4e5b9
	h = (h ^ h>>27) * 0x94d049bb133111eb
	return h ^ h>>31
}

// overlay is how a refreshed snapshot differs from its base. Entries of the
// base that are still there (survivors) keep their order; the others
// (stale) are gone, replaced or removed; delta entries are those the base
// lacks, at their positions in this snapshot.
type overlay struct {
	stale []int32 // base positions, ascending
	dpos  []int32 // positions of the delta entries, ascending
	// ins[j] is how many survivors come before delta entry j: dpos[j]-j.
	ins []int32
	// The delta entries' index (postings are positions in this
	// snapshot), their keys, and the users that differ from the base's.
	dindex []indexSlot
	dpost  []int32
	dkeys  map[string]int32
	dusers map[int]*user
	gone   map[int]bool
}

func (o *overlay) empty() bool { return len(o.stale) == 0 && len(o.dpos) == 0 }

type indexSlot struct {
	hash uint32
	postings
}

// entryPositions is the number of entries before the users: the base entry
// and the three containers.
const entryPositions = 4

// buildSnapshot builds the entries of a provider's directory. With
// indexed false (direct mode, one search's worth of objects) no indexes
// are built.
func buildSnapshot(p *providerConfig, users []user, groups []group, version string, indexed bool) *snapshot {
	us := make([]*user, len(users))
	for i := range users {
		us[i] = &users[i]
	}
	gs := make([]*group, len(groups))
	for i := range groups {
		gs[i] = &groups[i]
	}
	return build(p, us, gs, version, indexed)
}

// build builds a snapshot from nothing.
func build(p *providerConfig, users []*user, groups []*group, version string, indexed bool) *snapshot {
	s := &snapshot{prov: p, userList: users, groupList: groups}
	n := entryPositions + 2*len(users) + len(groups)
	s.entries = make([]*entry, 0, n)
	b := newBuilder(p, len(users)+len(groups))
	s.entries = append(s.entries, p.baseEntry(version))
	s.entries = append(s.entries, b.containerEntries()...)
	for _, u := range users {
		s.entries = append(s.entries, b.userEntry(u))
	}
	for _, g := range groups {
		s.entries = append(s.entries, b.groupEntry(g))
	}
	for i := range users {
		s.entries = append(s.entries, b.virtualGroupEntry(i))
	}
	s.rebase(indexed)
	return s
}

// rebase makes s's entries its own base: the overlay is dropped and the
// indexes are built over every entry.
func (s *snapshot) rebase(indexed bool) {
	base := &baseIndex{n: int32(len(s.entries)), userList: s.userList, entries: s.entries, seed: maphash.MakeSeed(),
		users: newPosTable(len(s.userList)), byKey: newPosTable(len(s.entries))}
	// A later entry or user with the key or pk of an earlier one replaces
	// it, as a map would.
	for i, u := range s.userList {
		base.users.insert(userHash(u.PK), int32(i), func(j int32) bool { return s.userList[j].PK == u.PK })
	}
	for i, e := range s.entries {
		base.byKey.insert(maphash.String(base.seed, e.Key), int32(i), func(j int32) bool { return s.entries[j].Key == e.Key })
	}
	s.base, s.overlay, s.rebuilt = base, overlay{}, 0
	if indexed {
		base.index, base.post = s.buildIndex(nil)
		base.radix, base.radixShift = radixOf(base.index)
	}
}

// find returns the position of the entry with a key.
func (s *snapshot) find(key string) (int32, bool) {
	if i, ok := s.dkeys[key]; ok {
		return i, true
	}
	p, ok := s.base.keyPosition(key)
	if !ok {
		return 0, false
	}
	return s.current(p)
}

// keyPosition returns the base position of the entry with a key.
func (b *baseIndex) keyPosition(key string) (int32, bool) {
	h := maphash.String(b.seed, key)
	tag := h >> 32 << 32
	for k := uint64(0); ; k++ {
		v := b.byKey.slots[b.byKey.probe(h, k)]
		if v == 0 {
			return 0, false
		}
		if v&^0xffffffff == tag {
			if p := int32(uint32(v)) - 1; b.entries[p].Key == key {
				return p, true
			}
		}
	}
}

// user returns the user with a pk, or nil.
func (s *snapshot) user(pk int) *user {
	if u, ok := s.dusers[pk]; ok {
		return u
	}
	if s.gone[pk] {
		return nil
	}
	b := s.base
	h := userHash(pk)
	tag := h >> 32 << 32
	for k := uint64(0); ; k++ {
		v := b.users.slots[b.users.probe(h, k)]
		if v == 0 {
			return nil
		}
		if v&^0xffffffff == tag {
			if u := b.userList[int32(uint32(v))-1]; u.PK == pk {
				return u
			}
		}
	}
}

// current returns the position in s of the entry at base position p, or
// false when it is stale.
func (s *snapshot) current(p int32) (int32, bool) {
	if len(s.stale) == 0 && len(s.dpos) == 0 {
		return p, true
	}
	si, found := slices.BinarySearch(s.stale, p)
	if found {
		return 0, false
	}
	r := p - int32(si)
	j, _ := slices.BinarySearch(s.ins, r+1)
	return r + int32(j), true
}

// postings locates one value's posting list in snapshot.post.
type postings struct{ off, n int32 }

// buildIndex indexes the entries at the given positions, or all of them
// when positions is nil. Postings are positions in s.
func (s *snapshot) buildIndex(positions []int32) ([]indexSlot, []int32) {
	type attr struct {
		id   uint64 // 0 if not indexed
		kind matchKind
	}
	attrs := map[string]attr{} // by key: commonName is indexed as cn
	indexed := func(e *entry, i int) attr {
		k := e.attrKey(i)
		a, ok := attrs[k]
		if !ok {
			a = attr{indexedAttributes[k], attributeKind(k)}
			attrs[k] = a
		}
		return a
	}
	each := func(fn func(i int32, e *entry)) {
		if positions == nil {
			for i, e := range s.entries {
				fn(int32(i), e)
			}
			return
		}
		for _, i := range positions {
			fn(i, s.entries[i])
		}
	}
	// Every (hash, entry) pair, packed into one integer and sorted, gives
	// the slots and their lists in one pass. Counting first sizes pairs
	// exactly: growing it by doubling copied it a dozen times at 100,000
	// users. The pairs are the only transient memory, 8 bytes per value.
	n := 0
	each(func(_ int32, e *entry) {
		for i := range e.len() {
			if indexed(e, i).id != 0 {
				n += len(e.attrValues(i))
			}
		}
	})
	pairs := make([]uint64, 0, n)
	each(func(i int32, e *entry) {
		for j := range e.len() {
			a := indexed(e, j)
			if a.id == 0 {
				continue
			}
			for _, v := range e.attrValues(j) {
				pairs = append(pairs, uint64(s.hash(a.id, s.indexKey(a.kind, v)))<<32|uint64(uint32(i)))
			}
		}
	})
	slices.Sort(pairs)
	// An entry holding a value twice (or two values that collide) is
	// listed once.
	pairs = slices.Compact(pairs)
	hashOf := func(p uint64) uint32 { return uint32(p >> 32) }
	slots := 0
	for i := range pairs {
		if i == 0 || hashOf(pairs[i]) != hashOf(pairs[i-1]) {
			slots++
		}
	}
	post := make([]int32, len(pairs))
	index := make([]indexSlot, 0, slots)
	for i, p := range pairs {
		post[i] = int32(uint32(p))
		if i == 0 || hashOf(p) != hashOf(pairs[i-1]) {
			index = append(index, indexSlot{hash: hashOf(p), postings: postings{off: int32(i)}})
		}
		index[len(index)-1].n++
	}
	return index, post
}

// hash is the index hash of a value key of attribute number id. 32 bits
// keep a slot at 12 bytes; with a million values a lookup meets a
// colliding value about once in four thousand, which costs one more
// filter evaluation. The seed is random per snapshot, so a directory's
// users cannot choose names that collide.
func (s *snapshot) hash(id uint64, key string) uint32 {
	h := maphash.String(s.base.seed, key) ^ id*0x9e3779b97f4a7c15
	return uint32(h ^ h>>32)
}

// radixSlots is about how many slots share a radix entry: 16 slots of
// 12 bytes are three cache lines, for 4 bytes of radix.
const radixSlots = 16

// radixOf returns the radix of an index (nil for a small one).
func radixOf(index []indexSlot) ([]int32, uint8) {
	bits := 0
	for bits < 24 && radixSlots<<(bits+1) <= len(index) {
		bits++
	}
	if bits == 0 {
		return nil, 0
	}
	shift := uint8(32 - bits)
	radix := make([]int32, 1<<bits+1)
	j := 0
	for p := range 1 << bits {
		for j < len(index) && index[j].hash>>shift < uint32(p) {
			j++
		}
		radix[p] = int32(j)
	}
	radix[1<<bits] = int32(len(index))
	return radix, shift
}

// lookup returns the posting list of a hash in an index, narrowed first
// by its radix when it has one.
func lookup(index []indexSlot, post []int32, radix []int32, shift uint8, h uint32) []int32 {
	if radix != nil {
		p := h >> shift
		index = index[radix[p]:radix[p+1]]
	}
	i, found := slices.BinarySearchFunc(index, h, func(slot indexSlot, h uint32) int {
		return cmp.Compare(slot.hash, h)
	})
	if !found {
		return nil
	}
	pl := index[i].postings
	// The three-index slice keeps an append by a caller from writing into
	// the next list.
	return post[pl.off : pl.off+pl.n : pl.off+pl.n]
}

// postingsOf returns the positions of the entries holding a value key of
// attribute number id (or a value colliding with it), ascending.
func (s *snapshot) postingsOf(id uint64, key string) []int32 {
	h := s.hash(id, key)
	list := lookup(s.base.index, s.base.post, s.base.radix, s.base.radixShift, h)
	if s.overlay.empty() {
		return list
	}
	// Base postings, less the stale ones, moved to their positions in s,
	// merged with the delta's.
	delta := lookup(s.dindex, s.dpost, nil, 0, h)
	out := make([]int32, 0, len(list)+len(delta))
	si, ji, di := 0, 0, 0
	for _, p := range list {
		for si < len(s.stale) && s.stale[si] < p {
			si++
		}
		if si < len(s.stale) && s.stale[si] == p {
			continue
		}
		r := p - int32(si)
		for ji < len(s.ins) && s.ins[ji] <= r {
			ji++
		}
		c := r + int32(ji)
		for di < len(delta) && delta[di] < c {
			out = append(out, delta[di])
			di++
		}
		out = append(out, c)
	}
	return append(out, delta[di:]...)
}

// indexKey normalises a value the way equality compares it.
func (s *snapshot) indexKey(kind matchKind, v string) string {
	switch kind {
	case matchInteger:
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
			return strconv.FormatInt(n, 10)
		}
	case matchDN:
		// Values are almost always DNs this snapshot built; their key is
		// known without parsing.
		if i, ok := s.dnIndex(v); ok {
			return s.entries[i].Key
		}
		if k, err := keyOf(v); err == nil {
			return k
		}
	}
	return strings.ToLower(v)
}

// dnIndex finds an entry by its DN string as built.
func (s *snapshot) dnIndex(dn string) (int32, bool) {
	// A built DN is cn=ESCAPED,<lower-case container>; its key is cheap to
	// derive only by parsing, so look it up through byKey when the DN is
	// already in key form (the common case: lower-case names).
	if i, ok := s.find(dn); ok && s.entries[i].DN == dn {
		return i, true
	}
	return 0, false
}

// filterKey is the index key of an equality assertion.
func (s *snapshot) filterKey(f *filter) string {
	switch f.kind {
	case matchDN:
		if f.dnKey != "" {
			return f.dnKey
		}
	case matchInteger:
		return s.indexKey(matchInteger, f.Value)
	}
	return strings.ToLower(f.Value)
}

// candidates returns the positions of the entries that can match f, in
// ascending order, or ok=false when f needs a full scan. Candidates are a
// superset: the filter is still evaluated on each.
func (s *snapshot) candidates(f *filter) (list []int32, ok bool) {
	if s.base.index == nil {
		return nil, false
	}
	switch f.Op {
	case opEqual, opApprox:
		id := indexedAttributes[f.key]
		if id == 0 {
			return nil, false
		}
		return s.postingsOf(id, s.filterKey(f)), true
	case opAnd:
		var best []int32
		found := false
		for _, c := range f.Children {
			if l, ok := s.candidates(c); ok && (!found || len(l) < len(best)) {
				best, found = l, true
			}
		}
		return best, found
	case opOr:
		var lists [][]int32
		total := 0
		for _, c := range f.Children {
			l, ok := s.candidates(c)
			if !ok {
				return nil, false
			}
			lists = append(lists, l)
			total += len(l)
		}
		if len(lists) == 1 {
			return lists[0], true
		}
		union := make([]int32, 0, total)
		for _, l := range lists {
			union = append(union, l...)
		}
		slices.Sort(union)
		return slices.Compact(union), true
	}
	return nil, false
}
