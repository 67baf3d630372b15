package ldap

import (
	"slices"
	"strconv"
	"strings"
)

// indexedAttributes are the attributes whose values are indexed, so that
// an equality filter on them costs the same at 100 entries and at 100,000.
var indexedAttributes = map[string]bool{
	"cn": true, "uid": true, "samaccountname": true, "mail": true, "objectclass": true,
	"memberof": true, "member": true, "memberuid": true, "uidnumber": true, "gidnumber": true,
}

// snapshot is one provider's directory at one moment: every entry, built
// once, plus indexes. It is never modified after buildSnapshot returns, so
// searches read it without locks while a refresh builds the next one.
type snapshot struct {
	prov    *providerConfig
	entries []*entry
	byKey   map[string]int32
	// index maps a lower-cased attribute name to value keys (see
	// indexKey) to a posting list: the positions of the entries holding
	// that value, ascending, stored in post. One shared array instead of a
	// slice per value saves a slice header and an allocation per value; at
	// 100,000 users there are about a million values.
	index map[string]map[string]postings
	post  []int32
	// users by pk, for access-restricted views and cached-bind checks.
	users map[int]*user
}

// buildSnapshot builds the entries of a provider's directory. With
// indexed false (direct mode, one search's worth of objects) no indexes
// are built.
func buildSnapshot(p *providerConfig, users []user, groups []group, version string, indexed bool) *snapshot {
	s := &snapshot{prov: p, users: make(map[int]*user, len(users))}
	n := 4 + 2*len(users) + len(groups)
	s.entries = make([]*entry, 0, n)
	s.entries = append(s.entries, p.baseEntry(version))
	s.entries = append(s.entries, p.containerEntries()...)
	b := newBuilder(p, len(users)+len(groups))
	for i := range users {
		u := &users[i]
		s.users[u.PK] = u
		s.entries = append(s.entries, b.userEntry(u))
	}
	for i := range groups {
		g := &groups[i]
		s.entries = append(s.entries, b.groupEntry(g, g.Members, g.Parents, g.Children))
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
	s.index = make(map[string]map[string]postings, len(indexedAttributes))
	// First pass: give every distinct value a posting number, count its
	// entries, and record (posting, entry) pairs in entry order; then lay
	// the lists out in post and fill them from the pairs, which keeps each
	// list ascending. The pairs are the only transient memory.
	type pair struct{ posting, entry int32 }
	lower := map[string]string{} // attribute name -> lower case, or "" if not indexed
	indexed := func(a *attribute) string {
		name, ok := lower[a.Name]
		if !ok {
			name = strings.ToLower(a.Name)
			if !indexedAttributes[name] {
				name = ""
			}
			lower[a.Name] = name
		}
		return name
	}
	// Counting the values first sizes pairs exactly: growing it by
	// doubling copied it a dozen times at 100,000 users.
	n := 0
	for _, e := range s.entries {
		for i := range e.Attributes {
			if indexed(&e.Attributes[i]) != "" {
				n += len(e.Attributes[i].Values)
			}
		}
	}
	var (
		lists []postings
		last  []int32 // the last entry counted for each posting
		pairs = make([]pair, 0, n)
	)
	for i, e := range s.entries {
		for j := range e.Attributes {
			a := &e.Attributes[j]
			name := indexed(a)
			if name == "" {
				continue
			}
			m := s.index[name]
			if m == nil {
				m = map[string]postings{}
				s.index[name] = m
			}
			kind := attributeKind(name)
			for _, v := range a.Values {
				k := s.indexKey(kind, v)
				pl, ok := m[k]
				if !ok {
					pl = postings{off: int32(len(lists))}
					m[k] = pl
					lists = append(lists, postings{})
					last = append(last, -1)
				}
				// Values repeat within an entry rarely; count the entry once.
				if last[pl.off] == int32(i) {
					continue
				}
				last[pl.off] = int32(i)
				lists[pl.off].n++
				pairs = append(pairs, pair{pl.off, int32(i)})
			}
		}
	}
	off := int32(0)
	for j := range lists {
		lists[j].off = off
		off += lists[j].n
		lists[j].n = 0
	}
	s.post = make([]int32, off)
	for _, p := range pairs {
		l := &lists[p.posting]
		s.post[l.off+l.n] = p.entry
		l.n++
	}
	for _, m := range s.index {
		for k, pl := range m {
			m[k] = lists[pl.off]
		}
	}
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
		m, indexed := s.index[strings.ToLower(f.Attr)]
		if !indexed {
			return nil, false
		}
		pl, found := m[s.filterKey(f)]
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
