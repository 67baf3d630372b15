package session

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// File is a [Store] in a directory, so sessions survive a restart of the
// outpost (the incumbent kept them in /dev/shm and lost them). Several
// processes may share the directory.
//
// Layout: sessions/<id>.json holds a session; subject/<hash>/<id> and
// sid/<hash>/<id> are empty index entries, so ending a user's sessions reads
// one small directory instead of every session file.
type File struct {
	dir string
	now func() time.Time
	mu  sync.Mutex
}

var _ Store = (*File)(nil)

// NewFile returns a store in dir, creating it (mode 0700) when missing. now
// is the clock used for expiry; nil means time.Now.
func NewFile(dir string, now func() time.Time) (*File, error) {
	if dir == "" {
		return nil, errors.New("file session store: no directory")
	}
	for _, sub := range []string{"sessions", "subject", "sid"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("file session store: creating %s: %w", dir, err)
		}
	}
	// Fail now rather than at the first login when the directory is not
	// writable.
	probe, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return nil, fmt.Errorf("file session store: %s is not writable: %w", dir, err)
	}
	probe.Close()
	os.Remove(probe.Name())
	if now == nil {
		now = time.Now
	}
	return &File{dir: dir, now: now}, nil
}

type fileRecord struct {
	ID       string    `json:"id"`
	Provider string    `json:"provider"`
	Subject  string    `json:"subject,omitempty"`
	SID      string    `json:"sid,omitempty"`
	Expires  time.Time `json:"expires"`
	Data     []byte    `json:"data"`
}

func (f *File) sessionPath(id string) string {
	return filepath.Join(f.dir, "sessions", id+".json")
}

func (f *File) indexDir(kind, key string) string {
	h := sha256.Sum256([]byte(key))
	return filepath.Join(f.dir, kind, hex.EncodeToString(h[:16]))
}

// Load implements [Store].
func (f *File) Load(_ context.Context, id string) (Session, error) {
	if !ValidID(id) {
		return Session{}, ErrNotFound
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s, err := f.read(id)
	if err != nil {
		return Session{}, err
	}
	if !f.now().Before(s.Expires) {
		f.remove(s)
		return Session{}, ErrNotFound
	}
	return s, nil
}

func (f *File) read(id string) (Session, error) {
	b, err := os.ReadFile(f.sessionPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return Session{}, ErrNotFound
	}
	if err != nil {
		return Session{}, fmt.Errorf("file session store: reading session: %w", err)
	}
	var r fileRecord
	if err := json.Unmarshal(b, &r); err != nil || r.ID != id {
		// A torn or foreign file is treated as absent and removed, so one
		// bad file cannot wedge a browser in an error loop.
		os.Remove(f.sessionPath(id))
		return Session{}, ErrNotFound
	}
	return Session(r), nil
}

// Save implements [Store].
func (f *File) Save(_ context.Context, s Session) error {
	if err := validate(s); err != nil {
		return err
	}
	b, err := json.Marshal(fileRecord(s))
	if err != nil {
		return fmt.Errorf("file session store: encoding session: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if old, err := f.read(s.ID); err == nil {
		f.remove(old)
	}
	for _, ix := range [][2]string{{"subject", s.Subject}, {"sid", s.SID}} {
		if ix[1] == "" {
			continue
		}
		d := f.indexDir(ix[0], ix[1])
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("file session store: indexing session: %w", err)
		}
		if err := os.WriteFile(filepath.Join(d, s.ID), nil, 0o600); err != nil {
			return fmt.Errorf("file session store: indexing session: %w", err)
		}
	}
	// Write then rename, so a reader never sees half a session.
	tmp, err := os.CreateTemp(filepath.Join(f.dir, "sessions"), ".tmp-*")
	if err != nil {
		return fmt.Errorf("file session store: writing session: %w", err)
	}
	_, werr := tmp.Write(b)
	cerr := tmp.Close()
	if werr != nil || cerr != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("file session store: writing session: %w", errors.Join(werr, cerr))
	}
	if err := os.Rename(tmp.Name(), f.sessionPath(s.ID)); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("file session store: writing session: %w", err)
	}
	return nil
}

// Delete implements [Store].
func (f *File) Delete(_ context.Context, flt Filter) (int, error) {
	if err := flt.check(); err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	switch {
	case flt.ID != "":
		ids = []string{flt.ID}
	case flt.Subject != "":
		ids = f.indexed("subject", flt.Subject)
	default:
		ids = f.indexed("sid", flt.SID)
	}
	n := 0
	for _, id := range ids {
		s, err := f.read(id)
		if err != nil || !flt.matches(s) {
			continue
		}
		f.remove(s)
		n++
	}
	return n, nil
}

func (f *File) indexed(kind, key string) []string {
	entries, _ := os.ReadDir(f.indexDir(kind, key))
	ids := make([]string, 0, len(entries))
	for _, e := range entries {
		if ValidID(e.Name()) {
			ids = append(ids, e.Name())
		} else {
			// Not one of ours: leave it.
			continue
		}
	}
	return ids
}

func (f *File) remove(s Session) {
	os.Remove(f.sessionPath(s.ID))
	for _, ix := range [][2]string{{"subject", s.Subject}, {"sid", s.SID}} {
		if ix[1] == "" {
			continue
		}
		d := f.indexDir(ix[0], ix[1])
		os.Remove(filepath.Join(d, s.ID))
		os.Remove(d) // only succeeds once empty
	}
}

// Cleanup removes expired sessions and reports how many. It reads every
// session file, so run it periodically (say every few minutes), not per
// request.
func (f *File) Cleanup(ctx context.Context) (int, error) {
	entries, err := os.ReadDir(filepath.Join(f.dir, "sessions"))
	if err != nil {
		return 0, fmt.Errorf("file session store: listing sessions: %w", err)
	}
	n := 0
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || !ValidID(id) {
			continue
		}
		f.mu.Lock()
		s, err := f.read(id)
		if err == nil && !f.now().Before(s.Expires) {
			f.remove(s)
			n++
		}
		f.mu.Unlock()
	}
	return n, nil
}
