// Package sessiontest is the conformance suite for [session.Store]
// implementations. Every store in package session runs it; a store written
// elsewhere can run it too.
package sessiontest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/akoutpost/akoutpost/proxy/session"
)

// Clock is a settable clock for stores under test.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// NewStore returns a fresh, empty store that reads time from now. Stores
// whose backend also expires entries by wall-clock TTL are fine: the suite
// keeps every expiry at least a minute ahead of the real time.
type NewStore func(t *testing.T, now func() time.Time) session.Store

// Run runs the conformance suite against stores made by newStore.
func Run(t *testing.T, newStore NewStore) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s session.Store, c *Clock)
	}{
		{"SaveLoad", testSaveLoad},
		{"NotFound", testNotFound},
		{"Overwrite", testOverwrite},
		{"Expiry", testExpiry},
		{"DeleteByID", testDeleteByID},
		{"DeleteBySubject", testDeleteBySubject},
		{"DeleteBySID", testDeleteBySID},
		{"DeleteNarrowedByProvider", testDeleteProvider},
		{"BadFilter", testBadFilter},
		{"BadID", testBadID},
		{"Concurrent", testConcurrent},
		{"Check", testCheck},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Clock{t: time.Now().Truncate(time.Millisecond)}
			tt.fn(t, newStore(t, c.Now), c)
		})
	}
}

func sess(c *Clock, id, provider, sub, sid string) session.Session {
	return session.Session{
		ID: id, Provider: provider, Subject: sub, SID: sid,
		Expires: c.Now().Add(time.Hour), Data: []byte(`{"id":"` + id + `"}`),
	}
}

func mustSave(t *testing.T, s session.Store, v session.Session) {
	t.Helper()
	if err := s.Save(context.Background(), v); err != nil {
		t.Fatalf("Save(%s): %v", v.ID, err)
	}
}

func exists(t *testing.T, s session.Store, id string) bool {
	t.Helper()
	_, err := s.Load(context.Background(), id)
	if errors.Is(err, session.ErrNotFound) {
		return false
	}
	if err != nil {
		t.Fatalf("Load(%s): %v", id, err)
	}
	return true
}

func testSaveLoad(t *testing.T, s session.Store, c *Clock) {
	want := sess(c, "a1", "p1", "user", "sid1")
	mustSave(t, s, want)
	got, err := s.Load(context.Background(), "a1")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got.ID != want.ID || got.Provider != want.Provider || got.Subject != want.Subject ||
		got.SID != want.SID || string(got.Data) != string(want.Data) || !got.Expires.Equal(want.Expires) {
		t.Fatalf("Load = %+v, want %+v", got, want)
	}
}

// testCheck: a store that is also a session.Checker answers Check as it
// answers Load, without the payload.
func testCheck(t *testing.T, s session.Store, c *Clock) {
	ch, ok := s.(session.Checker)
	if !ok {
		t.Skip("the store is not a session.Checker")
	}
	ctx := context.Background()
	want := sess(c, "c1", "p1", "user", "sid1")
	mustSave(t, s, want)
	got, err := ch.Check(ctx, "c1")
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if got.ID != want.ID || got.Provider != want.Provider || got.Subject != want.Subject ||
		got.SID != want.SID || got.Data != nil || !got.Expires.Equal(want.Expires) {
		t.Fatalf("Check = %+v, want %+v without Data", got, want)
	}
	if _, err := ch.Check(ctx, "missing"); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Check(missing) error = %v, want ErrNotFound", err)
	}
	c.Advance(2 * time.Hour)
	if _, err := ch.Check(ctx, "c1"); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Check of an expired session: error = %v, want ErrNotFound", err)
	}
}

func testNotFound(t *testing.T, s session.Store, c *Clock) {
	if _, err := s.Load(context.Background(), "missing"); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Load(missing) error = %v, want ErrNotFound", err)
	}
}

func testOverwrite(t *testing.T, s session.Store, c *Clock) {
	// A session saved again under a new subject (a login after an anonymous
	// start) must leave the old index: ending the old subject's sessions must
	// not end it.
	mustSave(t, s, sess(c, "o1", "p1", "", ""))
	mustSave(t, s, sess(c, "o1", "p1", "alice", "s-a"))
	mustSave(t, s, sess(c, "o1", "p1", "bob", "s-b"))
	if n, err := s.Delete(context.Background(), session.Filter{Subject: "alice"}); err != nil || n != 0 {
		t.Fatalf("Delete(alice) = %d, %v; want 0 (the session now belongs to bob)", n, err)
	}
	if n, err := s.Delete(context.Background(), session.Filter{SID: "s-a"}); err != nil || n != 0 {
		t.Fatalf("Delete(sid s-a) = %d, %v; want 0", n, err)
	}
	if !exists(t, s, "o1") {
		t.Fatal("session lost after deletes by stale index keys")
	}
	if n, err := s.Delete(context.Background(), session.Filter{Subject: "bob"}); err != nil || n != 1 {
		t.Fatalf("Delete(bob) = %d, %v; want 1", n, err)
	}
}

func testExpiry(t *testing.T, s session.Store, c *Clock) {
	v := sess(c, "e1", "p1", "u", "")
	v.Expires = c.Now().Add(2 * time.Minute)
	mustSave(t, s, v)
	if !exists(t, s, "e1") {
		t.Fatal("fresh session not found")
	}
	c.Advance(3 * time.Minute)
	if exists(t, s, "e1") {
		t.Fatal("expired session still loads")
	}
}

func testDeleteByID(t *testing.T, s session.Store, c *Clock) {
	mustSave(t, s, sess(c, "d1", "p1", "u", ""))
	mustSave(t, s, sess(c, "d2", "p1", "u", ""))
	n, err := s.Delete(context.Background(), session.Filter{ID: "d1"})
	if err != nil || n != 1 {
		t.Fatalf("Delete(ID) = %d, %v; want 1", n, err)
	}
	if exists(t, s, "d1") || !exists(t, s, "d2") {
		t.Fatal("Delete by ID removed the wrong sessions")
	}
	if n, err := s.Delete(context.Background(), session.Filter{ID: "d1"}); err != nil || n != 0 {
		t.Fatalf("second Delete(ID) = %d, %v; want 0", n, err)
	}
}

func testDeleteBySubject(t *testing.T, s session.Store, c *Clock) {
	for i := range 3 {
		mustSave(t, s, sess(c, fmt.Sprintf("alice%d", i), fmt.Sprintf("p%d", i), "alice", ""))
	}
	mustSave(t, s, sess(c, "bob0", "p0", "bob", ""))
	n, err := s.Delete(context.Background(), session.Filter{Subject: "alice"})
	if err != nil || n != 3 {
		t.Fatalf("Delete(Subject) = %d, %v; want 3", n, err)
	}
	for i := range 3 {
		if exists(t, s, fmt.Sprintf("alice%d", i)) {
			t.Fatalf("alice%d survived", i)
		}
	}
	if !exists(t, s, "bob0") {
		t.Fatal("another user's session was deleted")
	}
}

func testDeleteBySID(t *testing.T, s session.Store, c *Clock) {
	mustSave(t, s, sess(c, "x1", "p1", "alice", "sid-a"))
	mustSave(t, s, sess(c, "x2", "p2", "alice", "sid-a"))
	mustSave(t, s, sess(c, "x3", "p1", "alice", "sid-b"))
	n, err := s.Delete(context.Background(), session.Filter{SID: "sid-a"})
	if err != nil || n != 2 {
		t.Fatalf("Delete(SID) = %d, %v; want 2", n, err)
	}
	if exists(t, s, "x1") || exists(t, s, "x2") || !exists(t, s, "x3") {
		t.Fatal("Delete by SID removed the wrong sessions")
	}
}

func testDeleteProvider(t *testing.T, s session.Store, c *Clock) {
	mustSave(t, s, sess(c, "y1", "p1", "alice", "s"))
	mustSave(t, s, sess(c, "y2", "p2", "alice", "s"))
	n, err := s.Delete(context.Background(), session.Filter{Subject: "alice", Provider: "p2"})
	if err != nil || n != 1 {
		t.Fatalf("Delete(Subject, Provider) = %d, %v; want 1", n, err)
	}
	if !exists(t, s, "y1") || exists(t, s, "y2") {
		t.Fatal("Provider narrowing ignored")
	}
}

func testBadFilter(t *testing.T, s session.Store, c *Clock) {
	for _, f := range []session.Filter{{}, {Provider: "p"}, {ID: "a", Subject: "b"}, {Subject: "a", SID: "b"}} {
		if _, err := s.Delete(context.Background(), f); err == nil {
			t.Errorf("Delete(%+v) succeeded; a filter must select by exactly one key", f)
		}
	}
}

func testBadID(t *testing.T, s session.Store, c *Clock) {
	for _, id := range []string{"", "../escape", "a/b", "a b", string(make([]byte, 200))} {
		v := sess(c, "ok", "p", "", "")
		v.ID = id
		if err := s.Save(context.Background(), v); err == nil {
			t.Errorf("Save(ID %q) succeeded", id)
		}
		if _, err := s.Load(context.Background(), id); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("Load(%q) error = %v, want ErrNotFound", id, err)
		}
	}
}

func testConcurrent(t *testing.T, s session.Store, c *Clock) {
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 10 {
		wg.Go(func() {
			id := fmt.Sprintf("c%d", i)
			if err := s.Save(context.Background(), sess(c, id, "p", "carol", "")); err != nil {
				errs <- err
				return
			}
			if _, err := s.Load(context.Background(), id); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	n, err := s.Delete(context.Background(), session.Filter{Subject: "carol"})
	if err != nil || n != 10 {
		t.Fatalf("Delete(carol) = %d, %v; want 10", n, err)
	}
}
