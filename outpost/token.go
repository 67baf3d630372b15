package outpost

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// tokenRecheck bounds how often the token file is looked at: a stat per
// second, not per request.
const tokenRecheck = time.Second

// tokenFile keeps the token read from a file current. Kubernetes updates
// a mounted Secret by swapping a symbolic link to a new directory, so the
// file is followed by name, and a change is any change of the file the
// name resolves to, its size or its modification time. A file that
// vanishes, cannot be read or is empty keeps the last good token.
type tokenFile struct {
	path string
	log  *slog.Logger
	now  func() time.Time

	mu      sync.Mutex
	token   string
	info    os.FileInfo // of the file the token was last read from
	checked time.Time
	problem string // the last reason the file was not used, logged once
}

func newTokenFile(path string, log *slog.Logger, now func() time.Time) *tokenFile {
	return &tokenFile{path: path, log: log, now: now}
}

// load reads the token for the first time; Run calls it, since New does
// no I/O.
func (t *tokenFile) load() error {
	token, info, err := t.read()
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.token, t.info, t.checked = token, info, t.now()
	return nil
}

func (t *tokenFile) read() (string, os.FileInfo, error) {
	info, err := os.Stat(t.path)
	if err != nil {
		return "", nil, fmt.Errorf("token file: %w", err)
	}
	b, err := os.ReadFile(t.path)
	if err != nil {
		return "", nil, fmt.Errorf("token file: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return "", nil, errors.New("token file: the file is empty")
	}
	return token, info, nil
}

// Token returns the current token, re-reading the file when it changed.
func (t *tokenFile) Token() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if t.info == nil || now.Sub(t.checked) < tokenRecheck {
		return t.token
	}
	t.checked = now
	info, err := os.Stat(t.path)
	if err == nil && os.SameFile(info, t.info) && info.Size() == t.info.Size() && info.ModTime().Equal(t.info.ModTime()) {
		return t.token
	}
	token, info, err := t.read()
	if err != nil {
		if msg := err.Error(); msg != t.problem {
			t.problem = msg
			t.log.Warn("keeping the last good token", "file", t.path, "error", err)
		}
		return t.token
	}
	t.problem = ""
	if token != t.token {
		t.log.Info("the token file changed; using the new token", "file", t.path)
	}
	t.token, t.info = token, info
	return t.token
}
