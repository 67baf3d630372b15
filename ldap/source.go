package ldap

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/akoutpost/akoutpost/outpost"
)

// directory lists users and groups from the core. The API implementation
// is apiDirectory; tests may substitute their own.
type directory interface {
	listUsers(ctx context.Context, q url.Values) ([]user, error)
	listGroups(ctx context.Context, q url.Values) ([]group, error)
	// listAll lists the whole directory for a cached snapshot, reusing the
	// users of known whose JSON is unchanged.
	listAll(ctx context.Context, known *knownUsers) (listing, error)
}

// listing is a whole directory as one full fetch found it. Users and
// groups are allocated one by one and shared, unchanged, with the listings
// and snapshots before it, so a refresh that finds little changed
// allocates little.
type listing struct {
	users  []*user
	groups []*group
	// userPrev[i] is the position in the previous listing (known.last) of
	// users[i] when its JSON is unchanged, else -1; groupPrev likewise.
	// A snapshot built from that listing can then reuse the entries it
	// built for them.
	userPrev, groupPrev []int32
	// digest hashes the JSON of every user and group in the order
	// served: equal digests mean an unchanged directory.
	digest uint64
	// gen numbers the listings one knownUsers adopted; prevGen is the
	// generation userPrev and groupPrev refer to (0: none).
	gen, prevGen uint64
}

// knownUsers is the last full fetch, so that the next one decodes only
// the users and groups whose JSON changed: decoding was most of a
// 100,000-user refresh, and a reused user shares its strings and its
// entries with the directory still serving.
type knownUsers struct {
	seed   maphash.Seed
	last   listing
	digest uint64
	gen    uint64
}

func newKnownUsers() *knownUsers { return &knownUsers{seed: maphash.MakeSeed()} }

// next returns the known users after a full fetch found l.
func (k *knownUsers) next(l listing) *knownUsers {
	return &knownUsers{seed: k.seed, last: l, digest: l.digest, gen: l.gen}
}

// apiDirectory reads /core/users/ and /core/groups/ with the outpost token.
type apiDirectory struct{ api *outpost.Client }

func (d apiDirectory) listUsers(ctx context.Context, q url.Values) ([]user, error) {
	return d.users(ctx, q)
}

func (d apiDirectory) listGroups(ctx context.Context, q url.Values) ([]group, error) {
	return d.groups(ctx, q)
}

func (d apiDirectory) listAll(ctx context.Context, known *knownUsers) (listing, error) {
	// The digest covers the groups' JSON, then each user's hash in order.
	var digest maphash.Hash
	digest.SetSeed(known.seed)
	l := listing{gen: known.gen + 1, prevGen: known.gen}
	var gerr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.groups, l.groupPrev, gerr = d.allGroups(ctx, known, &digest)
	}()
	var uerr error
	l.users, l.userPrev, uerr = d.allUsers(ctx, known)
	<-done
	if uerr != nil {
		return listing{}, uerr
	}
	if gerr != nil {
		return listing{}, gerr
	}
	var b [8]byte
	for _, u := range l.users {
		binary.LittleEndian.PutUint64(b[:], u.raw)
		digest.Write(b[:])
	}
	l.digest = digest.Sum64()
	return l, nil
}

// allUsers lists every user for a cached directory, reusing the users of
// known whose JSON hashes the same.
func (d apiDirectory) allUsers(ctx context.Context, known *knownUsers) ([]*user, []int32, error) {
	q := url.Values{"include_groups": {"true"}, "page_size": {refreshUserPageSize}}
	r := reuse[user]{prev: known.last.users, hash: func(u *user) uint64 { return u.raw }}
	var out []*user
	var prev []int32
	refs := groupRefs{}
	err := listPages(ctx, d.api, "/core/users/", q, func(raw []byte) error {
		h := maphash.Bytes(known.seed, raw)
		if i := r.find(h); i >= 0 {
			out = append(out, r.prev[i])
			prev = append(prev, int32(i))
			return nil
		}
		u := new(user)
		var err error
		if *u, err = decodeUser(raw, refs); err != nil {
			return err
		}
		u.raw = h
		r.replaced(func(old *user) bool { return old.PK == u.PK })
		out = append(out, u)
		prev = append(prev, -1)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("listing users: %w", err)
	}
	return slices.Clip(out), slices.Clip(prev), nil
}

// allGroups lists every group for a cached directory, writing their JSON
// into digest and reusing the groups of known whose JSON is unchanged.
func (d apiDirectory) allGroups(ctx context.Context, known *knownUsers, digest *maphash.Hash) ([]*group, []int32, error) {
	q := url.Values{"include_users": {"true"}, "include_children": {"true"}, "include_parents": {"true"},
		"page_size": {refreshGroupPageSize}}
	r := reuse[group]{prev: known.last.groups, hash: func(g *group) uint64 { return g.raw }}
	var out []*group
	var prev []int32
	err := listPages(ctx, d.api, "/core/groups/", q, func(raw []byte) error {
		digest.Write(raw)
		h := maphash.Bytes(known.seed, raw)
		if i := r.find(h); i >= 0 {
			out = append(out, r.prev[i])
			prev = append(prev, int32(i))
			return nil
		}
		g := new(group)
		var err error
		if *g, err = decodeGroup(raw); err != nil {
			return err
		}
		g.raw = h
		r.replaced(func(old *group) bool { return old.PK == g.PK })
		out = append(out, g)
		prev = append(prev, -1)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("listing groups: %w", err)
	}
	return slices.Clip(out), slices.Clip(prev), nil
}

// reuseLookahead is how far past the expected position reuse.find looks:
// the core serves the directory in the same order every time, so an
// unchanged object is almost always the next one, or a few further on
// when objects were removed.
const reuseLookahead = 16

// reuse matches the objects of a listing with those of the previous one,
// in order, by the hash of their JSON.
type reuse[T any] struct {
	prev []*T
	hash func(*T) uint64
	next int
}

// find returns the position in prev of an object whose JSON hashed to h,
// or -1.
func (r *reuse[T]) find(h uint64) int {
	for i := r.next; i < min(r.next+reuseLookahead, len(r.prev)); i++ {
		if r.hash(r.prev[i]) == h {
			r.next = i + 1
			return i
		}
	}
	return -1
}

// replaced moves past the expected object when a changed object stands
// in its place, so that a run of changed objects does not lose track.
func (r *reuse[T]) replaced(same func(*T) bool) {
	if r.next < len(r.prev) && same(r.prev[r.next]) {
		r.next++
	}
}

// listPages calls each with the JSON of every item of a paginated list, in
// order, following pagination.next as outpost.Client.List does. Items are
// slices of the response body, valid only during the call, and one buffer
// holds every page in turn: unlike decoding each page into
// json.RawMessage values, this copies nothing, so listing a large
// directory whose objects are mostly unchanged leaves little garbage.
func listPages(ctx context.Context, api *outpost.Client, path string, q url.Values, each func([]byte) error) error {
	// The next page is requested as soon as this one says which it is,
	// so the core renders it while this one is decoded: one after the
	// other, a million-user load spent half its time waiting on each
	// side.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fetch := func(n int, buf *bytes.Buffer) <-chan error {
		qn := make(url.Values, len(q)+1)
		for k, v := range q {
			qn[k] = v
		}
		qn.Set("page", strconv.Itoa(n))
		done := make(chan error, 1)
		go func() { done <- api.GetRaw(ctx, path, qn, buf) }()
		return done
	}
	bufs := [2]*bytes.Buffer{new(bytes.Buffer), new(bytes.Buffer)}
	n := 1
	pending := fetch(n, bufs[0])
	for cur := 0; ; cur = 1 - cur {
		if err := <-pending; err != nil {
			return err
		}
		page := bufs[cur].Bytes()
		if !json.Valid(page) {
			return fmt.Errorf("GET %s: page %d is not JSON", path, n)
		}
		head := pageScan{}
		if err := head.UnmarshalJSON(page); err != nil {
			return fmt.Errorf("GET %s: page %d: %w", path, n, err)
		}
		if head.next > 0 && head.next <= n {
			return fmt.Errorf("GET %s: page %d points to page %d as next", path, n, head.next)
		}
		if head.next > 0 {
			pending = fetch(head.next, bufs[1-cur])
		}
		pg := pageScan{each: each}
		if err := pg.UnmarshalJSON(page); err != nil {
			return fmt.Errorf("GET %s: page %d: %w", path, n, err)
		}
		if pg.err != nil {
			return pg.err
		}
		if head.next <= 0 {
			return nil
		}
		n = head.next
	}
}

// users lists users for a direct-mode search or a bind.
func (d apiDirectory) users(ctx context.Context, q url.Values) ([]user, error) {
	q = withParams(q, "include_groups", "true")
	var out []user
	refs := groupRefs{}
	err := d.api.List(ctx, "/core/users/", q, func(raw json.RawMessage) error {
		u, err := decodeUser(raw, refs)
		if err != nil {
			return err
		}
		out = append(out, u)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing users: %w", err)
	}
	return out, nil
}

// groups lists groups for a direct-mode search.
func (d apiDirectory) groups(ctx context.Context, q url.Values) ([]group, error) {
	q = withParams(q, "include_users", "true", "include_children", "true", "include_parents", "true")
	var out []group
	err := d.api.List(ctx, "/core/groups/", q, func(raw json.RawMessage) error {
		g, err := decodeGroup(raw)
		if err != nil {
			return err
		}
		out = append(out, g)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing groups: %w", err)
	}
	return out, nil
}

func withParams(q url.Values, kv ...string) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = append([]string(nil), v...)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out.Set(kv[i], kv[i+1])
	}
	return out
}

// fetch lists users and groups concurrently. A nil query skips that list.
func fetch(ctx context.Context, d directory, uq, gq url.Values) ([]user, []group, error) {
	var listUsers func() ([]user, error)
	var listGroups func() ([]group, error)
	if uq != nil {
		listUsers = func() ([]user, error) { return d.listUsers(ctx, uq) }
	}
	if gq != nil {
		listGroups = func() ([]group, error) { return d.listGroups(ctx, gq) }
	}
	return both(listUsers, listGroups)
}

// both runs the two lists concurrently; a nil one is skipped.
func both(listUsers func() ([]user, error), listGroups func() ([]group, error)) ([]user, []group, error) {
	var (
		wg     sync.WaitGroup
		users  []user
		groups []group
		uerr   error
		gerr   error
	)
	if listUsers != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			users, uerr = listUsers()
		}()
	}
	if listGroups != nil {
		groups, gerr = listGroups()
	}
	wg.Wait()
	if uerr != nil {
		return nil, nil, uerr
	}
	if gerr != nil {
		return nil, nil, gerr
	}
	return users, groups, nil
}

// pushdown decides which lists a direct-mode search needs and which API
// filters narrow them. Only equality items at the top level or inside a
// top-level AND are pushed; the full filter is still evaluated on what
// comes back, so pushing is only ever an optimisation. The API's filters
// are exact-match (case-sensitive), as in authentik's outpost: (cn=Alice)
// does not find "alice" in direct mode.
func pushdown(p *providerConfig, f *filter) (uq, gq url.Values) {
	users, groups := needs(f)
	if users {
		uq = url.Values{}
	}
	if groups {
		gq = url.Values{}
	}
	items := []*filter{f}
	if f.Op == opAnd {
		items = f.Children
	}
	for _, it := range items {
		if it.Op != opEqual {
			continue
		}
		switch strings.ToLower(it.Attr) {
		case "cn":
			// A user's cn, and its virtual group's, is the username.
			// Groups have no name filter in the API.
			if uq != nil {
				uq.Set("username", it.Value)
			}
		case "mail":
			if uq != nil {
				uq.Set("email", it.Value)
			}
		case "memberof":
			// Users in a group, by the group's name from its DN. A DN
			// that is not a group of this provider is left to the filter.
			if uq != nil {
				if name, ok := rdnUnder(it.Value, p.groupsKey); ok {
					uq.Set("groups_by_name", name)
				}
			}
		case "member":
			// Groups with a user as member, and that user's virtual group.
			if name, ok := rdnUnder(it.Value, p.usersKey); ok {
				if gq != nil {
					gq.Set("members_by_username", name)
				}
				if uq != nil {
					uq.Set("username", name)
				}
			}
		}
	}
	return uq, gq
}

// rdnUnder returns NAME when dn is cn=NAME,<container>.
func rdnUnder(dn, containerKey string) (string, bool) {
	name, err := bindUsername(dn, containerKey)
	return name, err == nil
}

// needs reports whether a filter can match users (and their virtual
// groups) and groups, from objectClass equalities; anything else may match
// both. AND needs what every child allows, OR what any child does.
func needs(f *filter) (users, groups bool) {
	switch f.Op {
	case opEqual:
		if strings.EqualFold(f.Attr, "objectClass") {
			v := strings.ToLower(f.Value)
			return containsFold(userClasses, v) || containsFold(vgroupClasses, v), containsFold(groupClasses, v)
		}
	case opAnd:
		users, groups = true, true
		for _, c := range f.Children {
			u, g := needs(c)
			users, groups = users && u, groups && g
		}
		return users, groups
	case opOr:
		for _, c := range f.Children {
			u, g := needs(c)
			users, groups = users || u, groups || g
		}
		return users, groups
	}
	return true, true
}

func containsFold(list []string, v string) bool {
	for _, s := range list {
		if strings.EqualFold(s, v) {
			return true
		}
	}
	return false
}
