package session

import (
	"context"
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
	byID  map[string]Session
	bySub map[string]map[string]struct{}
	bySID map[string]map[string]struct{}
	saves int
}

var _ Store = (*Memory)(nil)

func (m *Memory) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

func (m *Memory) init() {
	if m.byID == nil {
		m.byID = make(map[string]Session)
		m.bySub = make(map[string]map[string]struct{})
		m.bySID = make(map[string]map[string]struct{})
	}
}

// Load implements [Store].
func (m *Memory) Load(_ context.Context, id string) (Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	s, ok := m.byID[id]
	if !ok {
		return Session{}, ErrNotFound
	}
	if !m.now().Before(s.Expires) {
		m.remove(s)
		return Session{}, ErrNotFound
	}
	s.Data = append([]byte(nil), s.Data...)
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
		m.remove(old)
	}
	m.byID[s.ID] = s
	addIndex(m.bySub, s.Subject, s.ID)
	addIndex(m.bySID, s.SID, s.ID)
	// Expired sessions nobody loads again are swept every so many saves, so
	// memory stays bounded by the sessions alive recently.
	m.saves++
	if m.saves >= 1024 && m.saves >= len(m.byID) {
		m.saves = 0
		now := m.now()
		for _, old := range m.byID {
			if !now.Before(old.Expires) {
				m.remove(old)
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
		ids = keys(m.bySub[f.Subject])
	default:
		ids = keys(m.bySID[f.SID])
	}
	n := 0
	for _, id := range ids {
		s, ok := m.byID[id]
		if ok && f.matches(s) {
			m.remove(s)
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

func (m *Memory) remove(s Session) {
	delete(m.byID, s.ID)
	delIndex(m.bySub, s.Subject, s.ID)
	delIndex(m.bySID, s.SID, s.ID)
}

func addIndex(idx map[string]map[string]struct{}, key, id string) {
	if key == "" {
		return
	}
	set := idx[key]
	if set == nil {
		set = make(map[string]struct{})
		idx[key] = set
	}
	set[id] = struct{}{}
}

func delIndex(idx map[string]map[string]struct{}, key, id string) {
	if key == "" {
		return
	}
	if set := idx[key]; set != nil {
		delete(set, id)
		if len(set) == 0 {
			delete(idx, key)
		}
	}
}

func keys(set map[string]struct{}) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	return out
}
