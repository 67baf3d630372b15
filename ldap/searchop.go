package ldap

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"slices"
	"strconv"
	"strings"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/akoutpost/akoutpost/ldap/ldapserver"
)

// Limits of paged searches per connection.
const (
	maxCursorsPerConn = 8
	// maxPagedEntries bounds what one paged search holds (pointers into a
	// snapshot, so about 8 bytes each).
	maxPagedEntries = 1 << 20
)

// searchOutcome is a search's result plus its metric labels.
type searchOutcome struct {
	ldapserver.Result
	app, reason string
}

func searchFail(code uint16, reason, app, msg string) searchOutcome {
	return searchOutcome{Result: ldapserver.Result{Code: code, Message: msg}, app: app, reason: reason}
}

// search answers one search request of a connection.
func (p *Provider) search(ctx context.Context, cs *connState, req *ldapserver.SearchRequest, w ldapserver.SearchWriter) searchOutcome {
	f, err := filterFromPacket(req.Filter)
	if err != nil {
		code, msg := filterError(err)
		return searchFail(code, "filter_parse_fail", "", msg)
	}
	baseKey, err := cs.baseKey(req.BaseDN)
	if err != nil {
		return searchFail(goldap.LDAPResultInvalidDNSyntax, "invalid_base_dn", "", "invalid base DN")
	}
	sel := cs.selector(req.Attributes, req.TypesOnly)
	st := p.state.Load()
	if st == nil {
		return searchFail(goldap.LDAPResultUnavailable, "no_provider", "", "the provider is not configured yet")
	}
	// The root DSE and the schema are public metadata, served to anonymous
	// clients too (authentik served anonymous clients an empty root DSE).
	switch {
	case baseKey == "":
		if req.Scope == scopeBase {
			if e := rootDSE(st.naming, p.cfg.Version); f.matches(e) {
				writeEntry(w, e, sel)
			}
		}
		return searchOutcome{}
	case baseKey == "cn=subschema":
		if e := subschemaEntry(); req.Scope != scopeOne && req.Scope != scopeChildren && f.matches(e) {
			writeEntry(w, e, sel)
		}
		return searchOutcome{}
	}
	rt := st.route(baseKey)
	if rt == nil {
		return searchFail(goldap.LDAPResultNoSuchObject, "no_provider", "", "no LDAP provider serves this base DN")
	}
	app := rt.cfg.AppSlug
	id := cs.identity()
	switch {
	case id == nil:
		// An anonymous connection sees the root DSE and the schema and
		// nothing else: no entries, as authentik's outpost answers
		// unbound searches, rather than an error a client may take for a
		// broken server. Counted as refused.
		return searchOutcome{app: app, reason: "empty_bind_dn"}
	case id.providerPK != rt.cfg.PK:
		return searchFail(goldap.LDAPResultInsufficientAccessRights, "invalid_bind_dn", app,
			"the bound user belongs to another base DN")
	}
	view, err := p.view(ctx, rt, id, req.BaseDN, baseKey, f)
	if err != nil {
		p.logger().Warn("LDAP search could not read the directory", "dn", id.dn, "error", err)
		r := coreFailure(err, "", "reading the directory")
		return searchFail(r.code, "directory_fail", app, r.msg)
	}
	if !view.exists(baseKey) {
		res := searchFail(goldap.LDAPResultNoSuchObject, "no_such_object", app, "no such entry")
		res.MatchedDN = view.matched(baseKey)
		return res
	}
	q := &query{baseKey: baseKey, scope: req.Scope, filter: f}
	if req.Paging != nil {
		return p.pagedSearch(cs, req, view, q, sel, w, app)
	}
	view.run(q, func(e *entry) bool { return writeEntry(w, e, sel) == nil })
	return searchOutcome{app: app}
}

// writeEntry sends e with the selected attributes.
func writeEntry(w ldapserver.SearchWriter, e *entry, sel *selector) error {
	return w.WriteEntry(&ldapserver.Entry{DN: e.DN, Attributes: sel.apply(e)})
}

// matched returns the DN of the nearest existing ancestor of key.
func (s *snapshot) matched(key string) string {
	for k := parentKey(key); k != ""; k = parentKey(k) {
		if i, ok := s.find(k); ok {
			return s.entries[i].DN
		}
	}
	return ""
}

// view returns the entries the identity may search: the whole directory
// for users with the search permission, their own corner otherwise. dn
// and key are the search base (or the compared entry) as the client sent
// it and its key.
//
// Without a cached directory, the view holds only what the search can
// return, and must still hold the base entry when it exists: a search
// whose base exists answers success even when nothing matches (RFC 4511
// 4.5.1.1), and noSuchObject only when the base does not. The base and
// the containers are in every view; a base at (or below) one user, group
// or virtual group is fetched by name; any other base gets the filter's
// push-down.
func (p *Provider) view(ctx context.Context, rt *provider, id *identity, dn, key string, f *filter) (*snapshot, error) {
	snap := rt.snap.Load()
	if id.canSearch {
		if snap != nil {
			return snap, nil
		}
		// Direct mode, or cached mode before the first good refresh.
		if l, ok := rt.cfg.leafOf(dn, key); ok {
			return p.leafView(ctx, rt, l)
		}
		uq, gq := pushdown(rt.cfg, f)
		users, groups, err := fetch(ctx, p.deps.dir, uq, gq)
		if err != nil {
			return nil, err
		}
		return buildSnapshot(rt.cfg, users, groups, p.cfg.Version, false), nil
	}
	if snap != nil {
		if u := snap.user(id.userPK); u != nil {
			return restrictedView(rt.cfg, u, p.cfg.Version), nil
		}
	}
	users, err := p.deps.dir.listUsers(ctx, url.Values{"username": {id.username}})
	if err != nil {
		return nil, err
	}
	for i := range users {
		if users[i].PK == id.userPK {
			return restrictedView(rt.cfg, &users[i], p.cfg.Version), nil
		}
	}
	return emptyView(rt.cfg, p.cfg.Version), nil
}

// Kinds of leaf entries.
const (
	leafUser = iota
	leafGroup
	leafVGroup
)

// leafRef is a user, group or virtual group entry named by a DN, with
// its name as the client spelled it.
type leafRef struct {
	kind int
	name string
	key  string
}

// leafOf returns the user, group or virtual group entry that dn (whose
// key is key) names or lies below: for cn=x,cn=alice,ou=users,BASE the
// user alice. ok is false for the base, the containers and DNs outside
// them, and when the RDN below the container is not a single non-empty
// cn, which no entry has.
func (p *providerConfig) leafOf(dn, key string) (leafRef, bool) {
	for _, c := range [...]struct {
		kind      int
		container string
	}{{leafUser, p.usersKey}, {leafGroup, p.groupsKey}, {leafVGroup, p.vgroupsKey}} {
		below, ok := strings.CutSuffix(key, ","+c.container)
		if !ok {
			continue
		}
		// Keys separate RDNs with "," and escape it inside values, so
		// the commas of below count the RDNs above the leaf's.
		depth := strings.Count(below, ",")
		parsed, err := parseDN(dn)
		if err != nil || depth >= len(parsed.RDNs) {
			return leafRef{}, false
		}
		rdn := parsed.RDNs[depth]
		if len(rdn.Attributes) != 1 || !strings.EqualFold(rdn.Attributes[0].Type, "cn") || rdn.Attributes[0].Value == "" {
			return leafRef{}, false
		}
		leaf := below[strings.LastIndexByte(below, ',')+1:] + "," + c.container
		return leafRef{kind: c.kind, name: rdn.Attributes[0].Value, key: leaf}, true
	}
	return leafRef{}, false
}

// leafView fetches the directory as far as a search based at (or below)
// the leaf l can see it: l alone, since nothing lies below a leaf. The
// API matches names exactly, while DNs match ignoring case; when the
// exact name finds nothing, the whole list is read and the entries whose
// key is l's kept, so cn=ALICE finds alice as a cached directory does.
func (p *Provider) leafView(ctx context.Context, rt *provider, l leafRef) (*snapshot, error) {
	dir := p.deps.dir
	var uq, gq url.Values
	if l.kind == leafGroup {
		gq = url.Values{"name": {l.name}}
	} else {
		uq = url.Values{"username": {l.name}}
	}
	users, groups, err := fetch(ctx, dir, uq, gq)
	if err != nil {
		return nil, err
	}
	if s := buildSnapshot(rt.cfg, users, groups, p.cfg.Version, false); s.exists(l.key) {
		return s, nil
	}
	if uq != nil {
		uq = url.Values{}
	}
	if gq != nil {
		gq = url.Values{}
	}
	if users, groups, err = fetch(ctx, dir, uq, gq); err != nil {
		return nil, err
	}
	users = slices.DeleteFunc(users, func(u user) bool {
		return rt.cfg.userKey(u.Username) != l.key && rt.cfg.vgroupKey(u.Username) != l.key
	})
	groups = slices.DeleteFunc(groups, func(g group) bool { return rt.cfg.groupKey(g.Name) != l.key })
	return buildSnapshot(rt.cfg, users, groups, p.cfg.Version, false), nil
}

// pageCursor is a paged search in progress: the matching entries, found
// once on the first page, and how far the client has read.
type pageCursor struct {
	request string // the search the cookie belongs to
	entries []*entry
	pos     int
}

// pagedSearch serves one page of an RFC 2696 paged search.
func (p *Provider) pagedSearch(cs *connState, req *ldapserver.SearchRequest, view *snapshot, q *query,
	sel *selector, w ldapserver.SearchWriter, app string) searchOutcome {
	size := int(req.Paging.PagingSize)
	cookie := string(req.Paging.Cookie)
	fingerprint := strings.Join([]string{req.BaseDN, strconv.Itoa(req.Scope), req.FilterString,
		strings.Join(req.Attributes, ",")}, "\x00")
	var cur *pageCursor
	if cookie != "" {
		cur = cs.takeCursor(cookie)
		if cur == nil || cur.request != fingerprint {
			return searchFail(goldap.LDAPResultUnwillingToPerform, "invalid_cookie", app,
				"unknown or expired paged-results cookie")
		}
		if size == 0 {
			// The client abandons the paged search.
			return pagedDone(app, "")
		}
	} else {
		cur = &pageCursor{request: fingerprint}
		truncated := false
		view.run(q, func(e *entry) bool {
			if len(cur.entries) >= maxPagedEntries {
				truncated = true
				return false
			}
			cur.entries = append(cur.entries, e)
			return true
		})
		if truncated {
			return searchFail(goldap.LDAPResultAdminLimitExceeded, "too_many_entries", app,
				"the result is too large to page")
		}
		if size == 0 {
			return pagedDone(app, "")
		}
	}
	end := min(cur.pos+size, len(cur.entries))
	for ; cur.pos < end; cur.pos++ {
		if err := writeEntry(w, cur.entries[cur.pos], sel); err != nil {
			// Size limit reached (the layer answers sizeLimitExceeded) or
			// the operation ended; the cursor is dropped either way.
			return searchOutcome{app: app}
		}
	}
	if cur.pos >= len(cur.entries) {
		return pagedDone(app, "")
	}
	next := newCookie()
	cs.putCursor(next, cur)
	return pagedDone(app, next)
}

func pagedDone(app, cookie string) searchOutcome {
	return searchOutcome{app: app, Result: ldapserver.Result{
		Controls: []goldap.Control{ldapserver.PagingResult([]byte(cookie))},
	}}
}

func newCookie() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
