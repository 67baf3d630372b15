package session_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/akoutpost/akoutpost/proxy/session"
	"github.com/akoutpost/akoutpost/proxy/session/sessiontest"
)

// TestFileCheckAcrossStores opens two stores on one directory, as two
// replicas do, on one fake clock. File.Check answers from memory between
// looks at the file, so each case checks that a change made elsewhere is
// seen once FileRecheck has passed since the checking store last looked:
// a session removed on disk is never reported after that.
func TestFileCheckAcrossStores(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// change alters session "s" (provider "p", subject "alice", SID
		// "sid1") behind b's back; b checked it just before.
		change func(t *testing.T, a, b *session.File, dir string)
		// wantProvider is what b reports after the recheck; "" for gone.
		wantProvider string
		// atOnce: b must see it without waiting for the recheck.
		atOnce bool
	}{
		{"sign-out at the other store", func(t *testing.T, a, _ *session.File, _ string) {
			if n, err := a.Delete(ctx, session.Filter{ID: "s"}); n != 1 || err != nil {
				t.Fatalf("Delete = %d, %v", n, err)
			}
		}, "", false},
		{"session end at the other store", func(t *testing.T, a, _ *session.File, _ string) {
			if n, err := a.Delete(ctx, session.Filter{SID: "sid1"}); n != 1 || err != nil {
				t.Fatalf("Delete = %d, %v", n, err)
			}
		}, "", false},
		{"removed by hand", func(t *testing.T, _, _ *session.File, dir string) {
			if err := os.Remove(filepath.Join(dir, "sessions", "s.json")); err != nil {
				t.Fatal(err)
			}
		}, "", false},
		{"replaced at the other store", func(t *testing.T, a, _ *session.File, _ string) {
			if err := a.Save(ctx, session.Session{ID: "s", Provider: "other", Subject: "alice", SID: "sid1",
				Expires: time.Now().Add(2 * time.Hour)}); err != nil {
				t.Fatal(err)
			}
		}, "other", false},
		{"torn file", func(t *testing.T, _, _ *session.File, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "sessions", "s.json"), []byte(`{"id":`), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "", false},
		// Both replicas receive the core's session-end message; the first
		// removes the files, and the second, finding none, must still
		// forget what it remembers of them.
		{"session end at both, the other first", func(t *testing.T, a, b *session.File, _ string) {
			a.Delete(ctx, session.Filter{SID: "sid1"})
			if _, err := b.Delete(ctx, session.Filter{SID: "sid1"}); err != nil {
				t.Fatal(err)
			}
		}, "", true},
		{"user's sessions ended at both", func(t *testing.T, a, b *session.File, _ string) {
			a.Delete(ctx, session.Filter{Subject: "alice"})
			b.Delete(ctx, session.Filter{Subject: "alice"})
		}, "", true},
		{"sign-out at this store", func(t *testing.T, _, b *session.File, _ string) {
			b.Delete(ctx, session.Filter{ID: "s"})
		}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &sessiontest.Clock{}
			clock.Advance(time.Since(time.Time{}))
			dir := t.TempDir()
			a, err := session.NewFile(dir, clock.Now)
			if err != nil {
				t.Fatal(err)
			}
			b, err := session.NewFile(dir, clock.Now)
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Save(ctx, session.Session{ID: "s", Provider: "p", Subject: "alice", SID: "sid1",
				Expires: clock.Now().Add(time.Hour), Data: []byte("d")}); err != nil {
				t.Fatal(err)
			}
			if got, err := b.Check(ctx, "s"); err != nil || got.Provider != "p" || got.Data != nil {
				t.Fatalf("Check before the change = %+v, %v", got, err)
			}
			tt.change(t, a, b, dir)
			if !tt.atOnce {
				clock.Advance(session.FileRecheck)
			}
			got, err := b.Check(ctx, "s")
			switch {
			case tt.wantProvider == "" && !errors.Is(err, session.ErrNotFound):
				t.Errorf("Check after the change = %+v, %v; want ErrNotFound", got, err)
			case tt.wantProvider != "" && (err != nil || got.Provider != tt.wantProvider):
				t.Errorf("Check after the change = %+v, %v; want provider %q", got, err, tt.wantProvider)
			}
		})
	}
}

// TestFileCheckUnchanged checks that a session whose file did not change
// stays valid across rechecks, and that expiry still applies between them.
func TestFileCheckUnchanged(t *testing.T) {
	ctx := context.Background()
	clock := &sessiontest.Clock{}
	clock.Advance(time.Since(time.Time{}))
	s, err := session.NewFile(t.TempDir(), clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Save(ctx, session.Session{ID: "s", Provider: "p", Expires: clock.Now().Add(2 * session.FileRecheck)}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := s.Check(ctx, "s"); err != nil {
			t.Fatalf("check %d: %v", i, err)
		}
		clock.Advance(session.FileRecheck / 2)
	}
	clock.Advance(session.FileRecheck / 2)
	if _, err := s.Check(ctx, "s"); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Check after expiry = %v, want ErrNotFound", err)
	}
}
