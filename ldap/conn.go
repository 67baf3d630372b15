package ldap

import (
	"slices"
	"strings"
	"sync"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/akoutpost/akoutpost/ldap/ldapserver"
)

// connState is what the provider keeps per LDAP connection: who it is
// bound as and its paged searches in progress.
type connState struct {
	conn *ldapserver.Conn

	mu      sync.Mutex
	id      *identity
	cursors map[string]*pageCursor
	order   []string // cursor cookies, oldest first

	// Clients repeat the base DN and the attribute list of their
	// searches; the last of each is kept with what was derived from it, so
	// a repeated search parses neither (a DN parse was a quarter of a
	// cached equality search's CPU).
	lastBase, lastBaseKey string
	lastAttrs             []string
	lastTypesOnly         bool
	lastSel               *selector
}

// baseKey returns keyOf(dn), reusing the last answer for the same DN.
func (c *connState) baseKey(dn string) (string, error) {
	c.mu.Lock()
	if c.lastBaseKey != "" && dn == c.lastBase {
		k := c.lastBaseKey
		c.mu.Unlock()
		return k, nil
	}
	c.mu.Unlock()
	k, ok := simpleKey(dn)
	if ok {
		return k, nil
	}
	k, err := keyOf(dn)
	if err != nil || k == "" {
		return k, err
	}
	c.mu.Lock()
	c.lastBase, c.lastBaseKey = dn, k
	c.mu.Unlock()
	return k, nil
}

// selector returns newSelector(attrs, typesOnly), reusing the last one
// for the same list. Selectors are read-only once built, so concurrent
// searches of the connection may share one.
func (c *connState) selector(attrs []string, typesOnly bool) *selector {
	c.mu.Lock()
	if c.lastSel != nil && typesOnly == c.lastTypesOnly && slices.Equal(attrs, c.lastAttrs) {
		s := c.lastSel
		c.mu.Unlock()
		return s
	}
	c.mu.Unlock()
	s := newSelector(attrs, typesOnly)
	c.mu.Lock()
	c.lastSel, c.lastAttrs, c.lastTypesOnly = s, slices.Clone(attrs), typesOnly
	c.mu.Unlock()
	return s
}

func (c *connState) identity() *identity {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.id
}

// setIdentity records a bind's outcome: nil makes the connection
// anonymous, as RFC 4511 4.2.1 asks after a failed bind. Paged searches of
// the previous identity are dropped.
func (c *connState) setIdentity(id *identity) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.id = id
	c.cursors = nil
	c.order = nil
}

// takeCursor removes and returns the cursor of a cookie; each cookie is
// good for one page.
func (c *connState) takeCursor(cookie string) *pageCursor {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur := c.cursors[cookie]
	delete(c.cursors, cookie)
	return cur
}

func (c *connState) putCursor(cookie string, cur *pageCursor) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cursors == nil {
		c.cursors = map[string]*pageCursor{}
	}
	// Forget the oldest cursors beyond the bound, and cookies already used.
	kept := c.order[:0]
	for _, k := range c.order {
		if _, ok := c.cursors[k]; ok {
			kept = append(kept, k)
		}
	}
	c.order = kept
	for len(c.order) >= maxCursorsPerConn {
		delete(c.cursors, c.order[0])
		c.order = c.order[1:]
	}
	c.cursors[cookie] = cur
	c.order = append(c.order, cookie)
}

// connRegistry tracks open connections, to find their state and to close
// those of an ended session.
type connRegistry struct {
	mu    sync.Mutex
	conns map[*ldapserver.Conn]*connState
}

func (r *connRegistry) init() { r.conns = map[*ldapserver.Conn]*connState{} }

func (r *connRegistry) open(c *ldapserver.Conn) *connState {
	r.mu.Lock()
	defer r.mu.Unlock()
	cs := &connState{conn: c}
	r.conns[c] = cs
	return cs
}

func (r *connRegistry) get(c *ldapserver.Conn) *connState {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cs, ok := r.conns[c]; ok {
		return cs
	}
	// A connection the observer did not announce: track it now.
	cs := &connState{conn: c}
	r.conns[c] = cs
	return cs
}

func (r *connRegistry) closed(c *ldapserver.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.conns, c)
}

// closeSession closes every connection bound through the session id.
func (r *connRegistry) closeSession(id string) int {
	r.mu.Lock()
	var victims []*connState
	for _, cs := range r.conns {
		if i := cs.identity(); i != nil && i.sessionID == id {
			victims = append(victims, cs)
		}
	}
	r.mu.Unlock()
	for _, cs := range victims {
		cs.setIdentity(nil)
		// The notice tells the client why (e2e: "session terminated").
		cs.conn.CloseWithNotice(goldap.LDAPResultUnavailable, "the authentik session ended")
	}
	return len(victims)
}

// simpleKey returns keyOf(s) without parsing when s is a plain DN: RDNs
// of one type=value each, types a letter then letters, digits or '-',
// values of letters, digits, '.', '_' and '-' only, no spaces. For such a
// DN the key is s lower-cased. It reports false for anything else, which
// the full parser then handles. Bind DNs and search bases are nearly
// always plain, and the parse was the largest cost of a cached bind.
func simpleKey(s string) (string, bool) {
	if s == "" || len(s) > maxDNLength {
		return "", false
	}
	const (
		typeStart = iota
		typeRest
		valueStart
		valueRest
	)
	state := typeStart
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		digit := '0' <= c && c <= '9'
		switch state {
		case typeStart:
			if !letter {
				return "", false
			}
			state = typeRest
		case typeRest:
			switch {
			case c == '=':
				state = valueStart
			case !letter && !digit && c != '-':
				return "", false
			}
		case valueStart, valueRest:
			switch {
			case c == ',' && state == valueRest:
				state = typeStart
			case letter || digit || c == '.' || c == '_' || c == '-':
				state = valueRest
			default:
				return "", false
			}
		}
	}
	if state != valueRest {
		return "", false
	}
	return strings.ToLower(s), true
}
