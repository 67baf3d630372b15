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
	// index maps a lower-cased attribute name to value keys (see indexKey)
	// to the positions of the entries holding that value, ascending.
	index map[string]map[string][]int32
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
	firstUser := len(s.entries)
	for i := range users {
		u := &users[i]
		s.users[u.PK] = u
		s.entries = append(s.entries, p.userEntry(u))
	}
	for i := range groups {
		g := &groups[i]
		s.entries = append(s.entries, p.groupEntry(g, g.Members, g.Parents, g.Children))
	}
	for i := range users {
		// The user entry's DN string is shared by the virtual group.
		s.entries = append(s.entries, p.virtualGroupEntryDN(&users[i], s.entries[firstUser+i].DN))
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

func (s *snapshot) buildIndexes() {
	s.index = make(map[string]map[string][]int32, len(indexedAttributes))
	for i, e := range s.entries {
		for _, a := range e.Attributes {
			name := strings.ToLower(a.Name)
			if !indexedAttributes[name] {
				continue
			}
			m := s.index[name]
			if m == nil {
				m = make(map[string][]int32, len(s.entries)/2)
				s.index[name] = m
			}
			kind := attributeKind(name)
			for _, v := range a.Values {
				k := s.indexKey(kind, v)
				list := m[k]
				// Values repeat within an entry rarely; skip the duplicate.
				if len(list) > 0 && list[len(list)-1] == int32(i) {
					continue
				}
				m[k] = append(list, int32(i))
			}
		}
	}
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
		return m[s.filterKey(f)], true
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
