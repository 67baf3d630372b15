package ldap

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"net/url"
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

// listing is a whole directory as one full fetch found it.
type listing struct {
	users  []user
	groups []group
	// digest hashes the JSON of every user and group in the order
	// served: equal digests mean an unchanged directory.
	digest uint64
}

// knownUsers are the users of the last full fetch by the hash of their
// JSON, so that the next one decodes only the users that changed:
// decoding was most of a 100,000-user refresh, and a reused user shares
// its strings with the directory still serving.
type knownUsers struct {
	seed   maphash.Seed
	byHash map[uint64]*user
	digest uint64
}

func newKnownUsers() *knownUsers { return &knownUsers{seed: maphash.MakeSeed()} }

// next returns the known users after a full fetch found l.
func (k *knownUsers) next(l listing) *knownUsers {
	n := &knownUsers{seed: k.seed, byHash: make(map[uint64]*user, len(l.users)), digest: l.digest}
	for i := range l.users {
		n.byHash[l.users[i].raw] = &l.users[i]
	}
	return n
}

// apiDirectory reads /core/users/ and /core/groups/ with the outpost token.
type apiDirectory struct{ api *outpost.Client }

func (d apiDirectory) listUsers(ctx context.Context, q url.Values) ([]user, error) {
	return d.users(ctx, q, nil)
}

func (d apiDirectory) listGroups(ctx context.Context, q url.Values) ([]group, error) {
	return d.groups(ctx, q, nil)
}

func (d apiDirectory) listAll(ctx context.Context, known *knownUsers) (listing, error) {
	// The digest covers the groups' JSON, then each user's hash in order.
	var digest maphash.Hash
	digest.SetSeed(known.seed)
	users, groups, err := both(
		func() ([]user, error) {
			return d.users(ctx, url.Values{"page_size": {refreshUserPageSize}}, known)
		},
		func() ([]group, error) { return d.groups(ctx, url.Values{}, &digest) })
	if err != nil {
		return listing{}, err
	}
	var b [8]byte
	for _, u := range users {
		binary.LittleEndian.PutUint64(b[:], u.raw)
		digest.Write(b[:])
	}
	return listing{users: users, groups: groups, digest: digest.Sum64()}, nil
}

// users lists users. With known, each user's JSON is hashed into
// user.raw, and a user known by that hash is reused instead of decoded.
func (d apiDirectory) users(ctx context.Context, q url.Values, known *knownUsers) ([]user, error) {
	q = withParams(q, "include_groups", "true")
	var out []user
	refs := groupRefs{}
	err := d.api.List(ctx, "/core/users/", q, func(raw json.RawMessage) error {
		var h uint64
		if known != nil {
			h = maphash.Bytes(known.seed, raw)
			if u, ok := known.byHash[h]; ok {
				out = append(out, *u)
				return nil
			}
		}
		u, err := decodeUser(raw, refs)
		if err != nil {
			return err
		}
		u.raw = h
		out = append(out, u)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing users: %w", err)
	}
	// A cached snapshot keeps the users; appending left up to half of
	// the slice unused.
	if cap(out)-len(out) > len(out)/8 {
		out = append(make([]user, 0, len(out)), out...)
	}
	return out, nil
}

// groups lists groups, writing their JSON into digest when it is not nil.
func (d apiDirectory) groups(ctx context.Context, q url.Values, digest *maphash.Hash) ([]group, error) {
	q = withParams(q, "include_users", "true", "include_children", "true", "include_parents", "true")
	var out []group
	err := d.api.List(ctx, "/core/groups/", q, func(raw json.RawMessage) error {
		if digest != nil {
			digest.Write(raw)
		}
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
