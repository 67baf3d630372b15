package session_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/akoutpost/akoutpost/proxy/session"
	"github.com/akoutpost/akoutpost/proxy/session/sessiontest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMemory(t *testing.T) {
	sessiontest.Run(t, func(t *testing.T, now func() time.Time) session.Store {
		return &session.Memory{Now: now}
	})
}

func TestFile(t *testing.T) {
	sessiontest.Run(t, func(t *testing.T, now func() time.Time) session.Store {
		s, err := session.NewFile(t.TempDir(), now)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestFileSurvivesRestart is the reason the file store exists: the
// incumbent kept standalone sessions in /dev/shm, so every restart logged
// every user out (authentik #20093, #25248). A new store on the same
// directory must see the old store's sessions and indexes.
func TestFileSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s1, err := session.NewFile(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s1.Save(ctx, session.Session{ID: "keep", Provider: "p", Subject: "alice", SID: "s1",
		Expires: time.Now().Add(time.Hour), Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	s2, err := session.NewFile(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s2.Load(ctx, "keep")
	if err != nil || string(got.Data) != "x" {
		t.Fatalf("Load after restart = %+v, %v", got, err)
	}
	if n, err := s2.Delete(ctx, session.Filter{SID: "s1"}); err != nil || n != 1 {
		t.Fatalf("Delete by SID after restart = %d, %v", n, err)
	}
}

func TestFileCleanup(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	s, err := session.NewFile(t.TempDir(), clock)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, exp := range []time.Duration{time.Minute, time.Hour} {
		if err := s.Save(ctx, session.Session{ID: []string{"short", "long"}[i], Provider: "p",
			Subject: "u", Expires: now.Add(exp)}); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(10 * time.Minute)
	n, err := s.Cleanup(ctx)
	if err != nil || n != 1 {
		t.Fatalf("Cleanup = %d, %v; want 1", n, err)
	}
	if _, err := s.Load(ctx, "long"); err != nil {
		t.Fatalf("unexpired session removed: %v", err)
	}
}

func TestFileUnwritable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root can write anywhere; permission check not testable")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	if _, err := session.NewFile(filepath.Join(dir, "x"), nil); err == nil {
		t.Fatal("NewFile on an unwritable directory succeeded")
	}
}

func TestFileNoDir(t *testing.T) {
	if _, err := session.NewFile("", nil); err == nil {
		t.Fatal("NewFile(\"\") succeeded")
	}
}

func TestValidID(t *testing.T) {
	long := strings.Repeat("a", 128)
	tests := []struct {
		id   string
		want bool
	}{
		{"", false},
		{"a", true},
		{"AZaz09_-", true},
		{long, true},
		{long + "a", false},
		{"a.b", false},
		{"../x", false},
		{"a b", false},
		{"é", false},
		{"a\x00", false},
	}
	for _, tt := range tests {
		if got := session.ValidID(tt.id); got != tt.want {
			t.Errorf("ValidID(%q) = %v, want %v", tt.id, got, tt.want)
		}
	}
}
