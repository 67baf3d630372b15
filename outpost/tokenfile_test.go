package outpost

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/akoutpost/akoutpost/internal/syncbuf"
)

// secretVolume writes a token the way the kubelet updates a Secret volume:
// the data lives in a timestamped directory, "..data" links to it, and
// "token" links through "..data"; an update writes a new directory and
// swaps "..data" with a rename.
type secretVolume struct {
	t   *testing.T
	dir string
	n   int
}

func (v *secretVolume) write(token string) {
	v.t.Helper()
	v.n++
	data := filepath.Join(v.dir, "..2026_12_06_"+string(rune('a'+v.n)))
	if err := os.Mkdir(data, 0o755); err != nil {
		v.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "token"), []byte(token+"\n"), 0o600); err != nil {
		v.t.Fatal(err)
	}
	tmp := filepath.Join(v.dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(data), tmp); err != nil {
		v.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(v.dir, "..data")); err != nil {
		v.t.Fatal(err)
	}
	if v.n == 1 {
		if err := os.Symlink(filepath.Join("..data", "token"), filepath.Join(v.dir, "token")); err != nil {
			v.t.Fatal(err)
		}
	}
}

func (v *secretVolume) path() string { return filepath.Join(v.dir, "token") }

// TestTokenFileRotation: a token file is followed through the Secret
// symlink swap; a file that vanishes, empties or cannot be read keeps the
// last good token and says why, once.
func TestTokenFileRotation(t *testing.T) {
	vol := &secretVolume{t: t, dir: t.TempDir()}
	vol.write("first-token")
	var logs syncbuf.Buffer
	now := time.Unix(1000, 0)
	tf := newTokenFile(vol.path(), slog.New(slog.NewTextHandler(&logs, nil)), func() time.Time { return now })
	if tf.Token() != "" {
		t.Fatal("a token before load")
	}
	if err := tf.load(); err != nil {
		t.Fatal(err)
	}
	tick := func() { now = now.Add(tokenRecheck) }
	steps := []struct {
		name   string
		change func()
		want   string
		log    string
	}{
		{"unchanged", func() {}, "first-token", ""},
		{"changed, but looked at once a second only", func() {
			vol.write("early-token")
			now = now.Add(-tokenRecheck / 2)
		}, "first-token", ""},
		{"looked at again", func() {}, "early-token", "using the new token"},
		{"Secret updated again", func() { vol.write("second-token") }, "second-token", "using the new token"},
		{"the link vanishes", func() { os.Remove(vol.path()) }, "second-token", "keeping the last good token"},
		{"still gone: no second warning", func() {}, "second-token", ""},
		{"back, empty", func() {
			os.Symlink(filepath.Join("..data", "token"), vol.path())
			vol.write("   ")
		}, "second-token", "the file is empty"},
		{"back, with a token", func() { vol.write("third-token") }, "third-token", "using the new token"},
	}
	for _, s := range steps {
		before := len(logs.String())
		s.change()
		tick()
		if got := tf.Token(); got != s.want {
			t.Fatalf("%s: token %q, want %q", s.name, got, s.want)
		}
		logged := logs.String()[before:]
		if s.log == "" && logged != "" || s.log != "" && !strings.Contains(logged, s.log) {
			t.Fatalf("%s: logged %q, want %q", s.name, logged, s.log)
		}
		if strings.Contains(logged, "token\"=") || strings.Contains(logged, s.want) {
			t.Fatalf("%s: the token reached the log: %q", s.name, logged)
		}
	}
}

// TestTokenFileLoadErrors: Run fails clearly when the file cannot give a
// token at start.
func TestTokenFileLoadErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	for path, want := range map[string]string{filepath.Join(dir, "missing"): "no such file", empty: "empty"} {
		err := newTokenFile(path, slog.New(slog.DiscardHandler), time.Now).load()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error saying %q", path, err, want)
		}
	}
}
