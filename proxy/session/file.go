package session

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// File is a [Store] in a directory, so sessions survive a restart of the
// outpost (the incumbent kept them in /dev/shm and lost them). Several
// processes may share the directory.
//
// Layout: sessions/<id>.json holds a session; subject/<hash>/<id> and
// sid/<hash>/<id> are empty index entries, so ending a user's sessions reads
// one small directory instead of every session file.
//
// [File.Check], which the proxy calls on every request, answers from
// memory what it read from a session's file, and looks at the file again
// (a stat) once what it saw is [FileRecheck] old: a session removed from
// the directory, by another process sharing it or by hand, is not
// reported after that. Deletes through this store take effect at once.
type File struct {
	dir string
	now func() time.Time
	mu  sync.Mutex // serialises changes to the directory

	// cache holds a *fileCached by session ID, at most about fileCacheMax
	// (cached counts them); reads take no lock.
	cache  sync.Map
	cached atomic.Int64
}

var (
	_ Store   = (*File)(nil)
	_ Checker = (*File)(nil)
)

// FileRecheck is how long [File.Check] trusts what it last saw of a
// session's file before it looks again. A session removed by another
// process sharing the directory (a sign-out or session end at another
// replica) or by hand is reported gone at most this long after.
const FileRecheck = 500 * time.Millisecond

// fileCacheMax bounds the sessions File.Check remembers; past it one is
// forgotten for each new one, which then costs a read of its file.
const fileCacheMax = 65536

// fileCached is what Check needs of a session, and which file it came from.
type fileCached struct {
	provider, subject, sid string
	expires                time.Time
	info                   os.FileInfo
	seen                   atomic.Int64 // f.now() in Unix ns when the file was last found unchanged
}

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
	s, info, err := f.readInfo(id)
	if err != nil {
		f.forget(id)
		return Session{}, err
	}
	now := f.now()
	if !now.Before(s.Expires) {
		f.remove(s)
		return Session{}, ErrNotFound
	}
	f.remember(s, info, now)
	return s, nil
}

// Check implements [Checker]. It reads the session's file only when it has
// not read it before or the file changed since; otherwise it answers from
// memory, having looked at the file (a stat, no read) within [FileRecheck].
func (f *File) Check(ctx context.Context, id string) (Session, error) {
	if !ValidID(id) {
		return Session{}, ErrNotFound
	}
	now := f.now()
	v, _ := f.cache.Load(id)
	e, _ := v.(*fileCached)
	if e != nil && now.Before(e.expires) {
		age := now.UnixNano() - e.seen.Load()
		if age >= 0 && age < int64(FileRecheck) {
			return e.session(id), nil
		}
		info, err := os.Stat(f.sessionPath(id))
		if err == nil && sameFile(info, e.info) {
			e.seen.Store(now.UnixNano())
			return e.session(id), nil
		}
		// Gone or replaced: Load reads it again, or finds it missing.
	}
	s, err := f.Load(ctx, id)
	s.Data = nil
	return s, err
}

func (e *fileCached) session(id string) Session {
	return Session{ID: id, Provider: e.provider, Subject: e.subject, SID: e.sid, Expires: e.expires}
}

// sameFile reports whether two stats are of the same, unchanged file. A
// save writes a new file and renames it over the old one, so a changed
// session is another file.
func sameFile(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// remember keeps what Check needs of s, read from the file info describes.
func (f *File) remember(s Session, info os.FileInfo, now time.Time) {
	e := &fileCached{provider: s.Provider, subject: s.Subject, sid: s.SID, expires: s.Expires, info: info}
	e.seen.Store(now.UnixNano())
	if _, loaded := f.cache.Swap(s.ID, e); loaded || f.cached.Add(1) <= fileCacheMax {
		return
	}
	// Full: forget another one (sync.Map ranges in no set order).
	f.cache.Range(func(k, _ any) bool {
		if k == s.ID {
			return true
		}
		f.forget(k.(string))
		return false
	})
}

func (f *File) forget(id string) {
	if _, loaded := f.cache.LoadAndDelete(id); loaded {
		f.cached.Add(-1)
	}
}

// forgetWhere forgets the remembered sessions flt selects, whether or not
// their files are still there: another process sharing the directory may
// have removed them already.
func (f *File) forgetWhere(flt Filter) {
	if flt.ID != "" {
		f.forget(flt.ID)
		return
	}
	f.cache.Range(func(k, v any) bool {
		id := k.(string)
		if flt.matches(v.(*fileCached).session(id)) {
			f.forget(id)
		}
		return true
	})
}

func (f *File) read(id string) (Session, error) {
	s, _, err := f.readInfo(id)
	return s, err
}

// readInfo reads a session and describes the file it read.
func (f *File) readInfo(id string) (Session, os.FileInfo, error) {
	fh, err := os.Open(f.sessionPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return Session{}, nil, ErrNotFound
	}
	if err != nil {
		return Session{}, nil, fmt.Errorf("file session store: reading session: %w", err)
	}
	defer fh.Close()
	info, err := fh.Stat()
	if err != nil {
		return Session{}, nil, fmt.Errorf("file session store: reading session: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(fh, maxSessionFile))
	if err != nil {
		return Session{}, nil, fmt.Errorf("file session store: reading session: %w", err)
	}
	var r fileRecord
	if err := json.Unmarshal(b, &r); err != nil || r.ID != id {
		// A torn or foreign file is treated as absent and removed, so one
		// bad file cannot wedge a browser in an error loop.
		os.Remove(f.sessionPath(id))
		return Session{}, nil, ErrNotFound
	}
	return Session(r), info, nil
}

// maxSessionFile bounds what is read of one session file; a session is a
// few kilobytes.
const maxSessionFile = 1 << 20

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
	if info, err := os.Stat(f.sessionPath(s.ID)); err == nil {
		f.remember(s, info, f.now())
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
	f.forgetWhere(flt)
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
	f.forget(s.ID)
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
