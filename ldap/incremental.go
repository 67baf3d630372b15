package ldap

// rebaseDivisor bounds the overlay of a refreshed snapshot: once more than
// one entry in rebaseDivisor is stale or new since the base, the indexes
// are rebuilt over the current entries (which are still reused).
const rebaseDivisor = 16

// rebuildDivisor bounds the memory that replaced entries keep alive: an
// entry shares its builder's chunks with the entries built beside it, so
// a replaced entry's memory is only freed with the last of them. Once the
// entries refreshes built since the last full build reach one in
// rebuildDivisor, the next refresh builds everything afresh.
const rebuildDivisor = 2

// nextSnapshot returns the snapshot of listing l for provider p. When prev
// was built from the listing l was matched against, the entries of every
// user and group whose JSON is unchanged are taken from prev as they are,
// and only the others are built; the indexes of prev's base serve on,
// with an overlay for what changed. Otherwise it builds from nothing.
//
// Either way the result holds exactly the entries, in the same order, that
// build(p, l.users, l.groups) would: an entry depends only on the provider
// and on its user's or group's JSON.
func nextSnapshot(p *providerConfig, prev *snapshot, l *listing, version string) (s *snapshot, full bool) {
	changed := 0
	for _, j := range l.userPrev {
		if j < 0 {
			changed += 2
		}
	}
	for _, j := range l.groupPrev {
		if j < 0 {
			changed++
		}
	}
	nU, nG := len(l.users), len(l.groups)
	n := entryPositions + 2*nU + nG
	if prev == nil || prev.base == nil || prev.base.index == nil || l.prevGen == 0 || prev.gen != l.prevGen ||
		(prev.rebuilt+changed)*rebuildDivisor > n {
		s = build(p, l.users, l.groups, version, true)
		s.gen = l.gen
		return s, true
	}
	pU, pG := len(prev.userList), len(prev.groupList)
	s = &snapshot{prov: p, userList: l.users, groupList: l.groups, gen: l.gen, base: prev.base,
		rebuilt: prev.rebuilt + changed}
	s.entries = make([]*entry, n)
	// old[c] is the position in prev of the entry at c, or -1 for a new one.
	old := make([]int32, n)
	for c := range entryPositions {
		s.entries[c], old[c] = prev.entries[c], int32(c)
	}
	b := newBuilder(p, changed)
	for i, u := range l.users {
		c := entryPositions + i
		if j := l.userPrev[i]; j >= 0 {
			s.entries[c], old[c] = prev.entries[entryPositions+int(j)], entryPositions+j
		} else {
			s.entries[c], old[c] = b.userEntry(u), -1
		}
	}
	for i, g := range l.groups {
		c := entryPositions + nU + i
		if j := l.groupPrev[i]; j >= 0 {
			o := entryPositions + pU + int(j)
			s.entries[c], old[c] = prev.entries[o], int32(o)
		} else {
			s.entries[c], old[c] = b.groupEntry(g), -1
		}
	}
	k := 0
	for i := range l.users {
		c := entryPositions + nU + nG + i
		if j := l.userPrev[i]; j >= 0 {
			o := entryPositions + pU + pG + int(j)
			s.entries[c], old[c] = prev.entries[o], int32(o)
		} else {
			// The k-th user entry b built.
			s.entries[c], old[c] = b.virtualGroupEntry(k), -1
			k++
		}
	}

	// The base position of each of prev's entries, or -1 for its delta.
	prevBase := make([]int32, len(prev.entries))
	si, di, bp := 0, 0, int32(0)
	for o := range prev.entries {
		if di < len(prev.dpos) && prev.dpos[di] == int32(o) {
			prevBase[o] = -1
			di++
			continue
		}
		for si < len(prev.stale) && prev.stale[si] == bp {
			si++
			bp++
		}
		prevBase[o] = bp
		bp++
	}
	// Survivors are the base's entries carried over in the base's order;
	// an entry carried out of order (the core reordered its list) is
	// treated as new, which is correct, only less shared.
	var stale, dpos []int32
	next := int32(0) // the first base position not yet carried or stale
	for c := range n {
		bp := int32(-1)
		if o := old[c]; o >= 0 {
			bp = prevBase[o]
		}
		if bp < next {
			dpos = append(dpos, int32(c))
			continue
		}
		for ; next < bp; next++ {
			stale = append(stale, next)
		}
		next = bp + 1
	}
	for ; next < s.base.n; next++ {
		stale = append(stale, next)
	}
	if (len(stale)+len(dpos))*rebaseDivisor > n {
		s.rebase(true)
		return s, true
	}
	s.stale, s.dpos = stale, dpos
	s.ins = make([]int32, len(dpos))
	s.dkeys = make(map[string]int32, len(dpos))
	s.dusers = map[int]*user{}
	for j, c := range dpos {
		s.ins[j] = c - int32(j)
		s.dkeys[s.entries[c].Key] = c
		if i := int(c) - entryPositions; i >= 0 && i < nU {
			u := l.users[i]
			s.dusers[u.PK] = u
		}
	}
	baseUsers := len(s.base.userList)
	for _, p := range stale {
		if i := int(p) - entryPositions; i >= 0 && i < baseUsers {
			pk := s.base.userList[i].PK
			if _, ok := s.dusers[pk]; !ok {
				if s.gone == nil {
					s.gone = map[int]bool{}
				}
				s.gone[pk] = true
			}
		}
	}
	if len(dpos) > 0 {
		s.dindex, s.dpost = s.buildIndex(dpos)
	}
	return s, false
}
