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
// once, plus indexes. It is never modified after buildSnapshot returns, so
// searches read it without locks while a refresh builds the next one.
type snapshot struct {
	prov    *providerConfig
	entries []*entry
	byKey   map[string]int32
	// index has one slot per distinct (attribute, value key) hash, sorted
	// by hash, pointing at a posting list in post: the positions of the
	// entries holding that value, ascending. At 100,000 users there are
	// about a million values; 12 bytes each here cost a quarter of a map
	// of maps keyed by strings. Two values whose hashes collide share a list,
	// which is harmless: candidates are a superset, and every candidate is
	// checked against the filter.
	index []indexSlot
	post  []int32
	seed  maphash.Seed
	// users by pk, for access-restricted views and cached-bind checks.
	users map[int]*user
}

type indexSlot struct {
	hash uint32
	postings
}

// buildSnapshot builds the entries of a provider's directory. With
// indexed false (direct mode, one search's worth of objects) no indexes
// are built.
func buildSnapshot(p *providerConfig, users []user, groups []group, version string, indexed bool) *snapshot {
	s := &snapshot{prov: p, users: make(map[int]*user, len(users))}
	n := 4 + 2*len(users) + len(groups)
	s.entries = make([]*entry, 0, n)
	b := newBuilder(p, len(users)+len(groups))
	s.entries = append(s.entries, p.baseEntry(version))
	s.entries = append(s.entries, b.containerEntries()...)
	for i := range users {
		u := &users[i]
		s.users[u.PK] = u
		s.entries = append(s.entries, b.userEntry(u))
	}
	for i := range groups {
		g := &groups[i]
		s.entries = append(s.entries, b.groupEntry(g))
	}
	for i := range users {
		s.entries = append(s.entries, b.virtualGroupEntry(i))
	}
	s.byKey = make(map[string]int32, len(s.entries))
	for i, e := range s.entries {
		s.byKey[e.Key] = int32(i)
	}
	if indexed {
		s.buildIndexes()
	}
	return s
}

// postings locates one value's posting list in snapshot.post.
type postings struct{ off, n int32 }

func (s *snapshot) buildIndexes() {
	s.seed = maphash.MakeSeed()
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
	// Every (hash, entry) pair, packed into one integer and sorted, gives
	// the slots and their lists in one pass. Counting first sizes pairs
	// exactly: growing it by doubling copied it a dozen times at 100,000
	// users. The pairs are the only transient memory, 8 bytes per value.
	n := 0
	for _, e := range s.entries {
		for i := range e.attrs {
			if indexed(e, i).id != 0 {
				n += int(e.attrs[i].n)
			}
		}
	}
	pairs := make([]uint64, 0, n)
	for i, e := range s.entries {
		for j := range e.attrs {
			a := indexed(e, j)
			if a.id == 0 {
				continue
			}
			for _, v := range e.tab.values(e.attrs[j].valueRef) {
				pairs = append(pairs, uint64(s.hash(a.id, s.indexKey(a.kind, v)))<<32|uint64(i))
			}
		}
	}
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
	s.post = make([]int32, len(pairs))
	s.index = make([]indexSlot, 0, slots)
	for i, p := range pairs {
		s.post[i] = int32(uint32(p))
		if i == 0 || hashOf(p) != hashOf(pairs[i-1]) {
			s.index = append(s.index, indexSlot{hash: hashOf(p), postings: postings{off: int32(i)}})
		}
		s.index[len(s.index)-1].n++
	}
}

// hash is the index hash of a value key of attribute number id. 32 bits
// keep a slot at 12 bytes; with a million values a lookup meets a
// colliding value about once in four thousand, which costs one more
// filter evaluation. The seed is random per snapshot, so a directory's
// users cannot choose names that collide.
func (s *snapshot) hash(id uint64, key string) uint32 {
	h := maphash.String(s.seed, key) ^ id*0x9e3779b97f4a7c15
	return uint32(h ^ h>>32)
}

// lookup returns the posting list of a value key of attribute number id.
func (s *snapshot) lookup(id uint64, key string) (postings, bool) {
	h := s.hash(id, key)
	i, found := slices.BinarySearchFunc(s.index, h, func(slot indexSlot, h uint32) int {
		return cmp.Compare(slot.hash, h)
	})
	if !found {
		return postings{}, false
	}
	return s.index[i].postings, true
}

// list returns the entries of a posting list; the three-index slice keeps
// an append by a caller from writing into the next list.
func (s *snapshot) list(pl postings) []int32 {
	return s.post[pl.off : pl.off+pl.n : pl.off+pl.n]
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
	if i, ok := s.byKey[dn]; ok && s.entries[i].DN == dn {
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
	if s.index == nil {
		return nil, false
	}
	switch f.Op {
	case opEqual, opApprox:
		id := indexedAttributes[f.key]
		if id == 0 {
			return nil, false
		}
		pl, found := s.lookup(id, s.filterKey(f))
		if !found {
			return nil, true
		}
		return s.list(pl), true
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
