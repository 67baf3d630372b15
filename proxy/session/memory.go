package session

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Memory is a [Store] in process memory. Its zero value is ready to use.
// Sessions are lost when the process ends; use it for embedded outposts
// whose host keeps one process, and for tests.
type Memory struct {
	// Now is the clock used to expire sessions; nil means time.Now.
	Now func() time.Time

	mu    sync.Mutex
	byID  map[string]*memEntry
	bySub map[string][]string
	bySID map[string][]string
	saves int
}

// memEntry is a Session without its ID (the map key) and with the expiry
// as Unix nanoseconds: 32 bytes less per session than a Session value,
// which matters at the hundreds of thousands of sessions one process holds.
// The map holds pointers: its slots are then a quarter of the size, and a
// map keeps a third or more of its slots empty.
type memEntry struct {
	provider, subject, sid string
	expires                int64
	data                   []byte
}

func (e *memEntry) session(id string) Session {
	return Session{ID: id, Provider: e.provider, Subject: e.subject, SID: e.sid,
		Expires: time.Unix(0, e.expires), Data: e.data}
}

var (
	_ Store   = (*Memory)(nil)
	_ Checker = (*Memory)(nil)
)

func (m *Memory) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

func (m *Memory) init() {
	if m.byID == nil {
		m.byID = make(map[string]*memEntry)
		m.bySub = make(map[string][]string)
		m.bySID = make(map[string][]string)
	}
}

// Load implements [Store].
func (m *Memory) Load(_ context.Context, id string) (Session, error) {
	return m.get(id, true)
}

// Check implements [Checker].
func (m *Memory) Check(_ context.Context, id string) (Session, error) {
	return m.get(id, false)
}

func (m *Memory) get(id string, withData bool) (Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	e, ok := m.byID[id]
	if !ok {
		return Session{}, ErrNotFound
	}
	if m.now().UnixNano() >= e.expires {
		m.remove(id, e)
		return Session{}, ErrNotFound
	}
	s := e.session(id)
	s.Data = nil
	if withData {
		s.Data = append([]byte(nil), e.data...)
	}
	return s, nil
}

// Save implements [Store].
func (m *Memory) Save(_ context.Context, s Session) error {
	if err := validate(s); err != nil {
		return err
	}
	s.Data = append([]byte(nil), s.Data...)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	if old, ok := m.byID[s.ID]; ok {
		m.remove(s.ID, old)
	}
	m.byID[s.ID] = &memEntry{provider: s.Provider, subject: s.Subject, sid: s.SID,
		expires: s.Expires.UnixNano(), data: s.Data}
	addIndex(m.bySub, s.Subject, s.ID)
	addIndex(m.bySID, s.SID, s.ID)
	// Expired sessions nobody loads again are swept every so many saves, so
	// memory stays bounded by the sessions alive recently.
	m.saves++
	if m.saves >= 1024 && m.saves >= len(m.byID) {
		m.saves = 0
		now := m.now().UnixNano()
		for id, old := range m.byID {
			if now >= old.expires {
				m.remove(id, old)
			}
		}
	}
	return nil
}

// Delete implements [Store].
func (m *Memory) Delete(_ context.Context, f Filter) (int, error) {
	if err := f.check(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	var ids []string
	switch {
	case f.ID != "":
		ids = []string{f.ID}
	case f.Subject != "":
		// A copy: remove edits the index slice while this loop reads it.
		ids = append([]string(nil), m.bySub[f.Subject]...)
	default:
		ids = append([]string(nil), m.bySID[f.SID]...)
	}
	n := 0
	for _, id := range ids {
		e, ok := m.byID[id]
		if ok && f.matches(e.session(id)) {
			m.remove(id, e)
			n++
		}
	}
	return n, nil
}

// Len reports how many sessions the store holds, expired ones included.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.byID)
}

func (m *Memory) remove(id string, e *memEntry) {
	delete(m.byID, id)
	delIndex(m.bySub, e.subject, id)
	delIndex(m.bySID, e.sid, id)
}

// The indexes map a subject or SID to the IDs of its sessions. A slice,
// not a set: a user has a handful of sessions, so a scan of them is cheap,
// and a one-element slice costs 16 bytes where a one-element map costs
// about 200.
func addIndex(idx map[string][]string, key, id string) {
	if key == "" {
		return
	}
	idx[key] = append(idx[key], id)
}

func delIndex(idx map[string][]string, key, id string) {
	if key == "" {
		return
	}
	ids := idx[key]
	i := slices.Index(ids, id)
	if i < 0 {
		return
	}
	if len(ids) == 1 {
		delete(idx, key)
		return
	}
	idx[key] = slices.Delete(ids, i, i+1)
}
