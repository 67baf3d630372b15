package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDefaultSessionDir: the default file store belongs to one outpost of
// one core. It used to be one directory for every outpost on the host, so
// signing out at one outpost ended the user's sessions at every other,
// even at outposts of another core.
func TestDefaultSessionDir(t *testing.T) {
	tmp := t.TempDir()
	dir := func(core, pk string) string {
		t.Helper()
		d, err := defaultSessionDir(tmp, core, pk)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Dir(d) != tmp || !strings.HasPrefix(filepath.Base(d), "akoutpost-sessions-") {
			t.Fatalf("default session directory %s, want akoutpost-sessions-* under %s", d, tmp)
		}
		fi, err := os.Stat(d)
		if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
			t.Fatalf("%s: %v %v, want a directory with mode 0700", d, fi, err)
		}
		return d
	}
	const pkA, pkB = "5d1f4c3e-0000-4000-8000-00000000000a", "5d1f4c3e-0000-4000-8000-00000000000b"
	a := dir("https://auth.example.com/", pkA)
	if again := dir("https://auth.example.com", pkA); again != a {
		t.Errorf("one outpost got %s and %s (a trailing slash on the core URL)", a, again)
	}
	if b := dir("https://auth.example.com/", pkB); b == a {
		t.Errorf("two outposts of one core share %s", a)
	}
	if c := dir("https://other.example.com/", pkA); c == a {
		t.Errorf("outposts of two cores with the same primary key share %s", a)
	}
	// The separator keeps (core, pk) pairs apart that would concatenate
	// alike.
	if dir("https://h/a", "b") == dir("https://h/", "ab") {
		t.Error("two (core, outpost) pairs concatenating alike share a directory")
	}
}

// TestDefaultSessionDirRefusesOpenDirectory: the temporary directory is
// shared by every user of the host, and the default directory's name can
// be computed by anyone who knows the core's URL and the outpost's primary
// key. A directory someone else prepared, open to others or a link to
// elsewhere, is refused rather than used to keep sessions.
func TestDefaultSessionDirRefusesOpenDirectory(t *testing.T) {
	tmp := t.TempDir()
	d, err := defaultSessionDir(tmp, "https://auth.example.com/", "pk")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := defaultSessionDir(tmp, "https://auth.example.com/", "pk"); err == nil || !strings.Contains(err.Error(), "AKOUTPOST_SESSION_STORE") {
		t.Errorf("a directory open to others: error %v, want a refusal naming AKOUTPOST_SESSION_STORE", err)
	}
	if err := os.Remove(d); err != nil {
		t.Fatal(err)
	}
	elsewhere := t.TempDir()
	if err := os.Symlink(elsewhere, d); err != nil {
		t.Fatal(err)
	}
	if _, err := defaultSessionDir(tmp, "https://auth.example.com/", "pk"); err == nil {
		t.Error("a symbolic link in place of the directory was accepted")
	}
}

func TestOpenSessionStoreNeedsDirectory(t *testing.T) {
	if _, _, err := openSessionStore(t.Context(), "file://"); err == nil {
		t.Error(`"file://" without a directory was accepted`)
	}
	dir := t.TempDir()
	s, release, err := openSessionStore(t.Context(), "file://"+dir)
	if err != nil || s == nil {
		t.Fatalf("file store in %s: %v", dir, err)
	}
	release()
}
