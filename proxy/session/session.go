package session

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrNotFound is returned by [Store.Load] for a session that does not exist
// or has expired.
var ErrNotFound = errors.New("session not found")

// A Session is one browser's (or one header-authenticated client's) login
// with one proxy provider.
type Session struct {
	// ID is the random identifier the session cookie carries (encrypted).
	// It is at most 128 characters of [A-Za-z0-9_-].
	ID string
	// Provider names the provider the session belongs to. A session is only
	// ever honoured by the provider that created it.
	Provider string
	// Subject is the user's "sub" claim; sessions are ended per user by it.
	Subject string
	// SID is the authentik session the login came from (the "sid" claim);
	// the core's session-end message names it.
	SID string
	// Expires is when the session stops being valid. Stores drop expired
	// sessions lazily or with their own expiry mechanism.
	Expires time.Time
	// Data is the payload, opaque to the store.
	Data []byte
}

// Filter selects sessions to delete. Exactly one of ID, Subject and SID is
// set; Provider, when set, narrows the selection to one provider.
type Filter struct {
	ID       string
	Subject  string
	SID      string
	Provider string
}

// A Store keeps sessions. Implementations are safe for concurrent use.
//
// A store may also implement io.Closer; the caller that created it closes it.
type Store interface {
	// Load returns the session with the given ID, or ErrNotFound.
	Load(ctx context.Context, id string) (Session, error)
	// Save creates or replaces the session with s.ID.
	Save(ctx context.Context, s Session) error
	// Delete removes the sessions f selects and reports how many it removed.
	// Selecting by Subject or SID uses an index, never a scan.
	Delete(ctx context.Context, f Filter) (int, error)
}

// A Checker is a Store that can report a session without copying its
// payload. The proxy asks the store on every request of a session it has
// already decoded, so that a sign-out takes effect at once, and needs only
// the session's provider and expiry for that.
type Checker interface {
	// Check is Load with Data left nil.
	Check(ctx context.Context, id string) (Session, error)
}

// ValidID reports whether id can name a session: 1 to 128 characters of
// [A-Za-z0-9_-]. Stores use it to refuse IDs that could escape a key space
// or a directory. A loop rather than a regexp: it runs on every request, and
// the regexp's bounded repetition compiled to a 170 KB program at start-up.
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validate checks what every store requires of a session before saving it.
func validate(s Session) error {
	if !ValidID(s.ID) {
		return errors.New("saving session: invalid session ID")
	}
	if s.Expires.IsZero() {
		return fmt.Errorf("saving session: no expiry")
	}
	return nil
}

// check verifies that exactly one selector of f is set.
func (f Filter) check() error {
	n := 0
	for _, v := range []string{f.ID, f.Subject, f.SID} {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		return errors.New("deleting sessions: exactly one of ID, Subject and SID must be set")
	}
	if f.ID != "" && !ValidID(f.ID) {
		return errors.New("deleting sessions: invalid session ID")
	}
	return nil
}

// matches reports whether s is selected by f (used by stores after an index
// lookup, and to apply the Provider narrowing).
func (f Filter) matches(s Session) bool {
	if f.Provider != "" && s.Provider != f.Provider {
		return false
	}
	switch {
	case f.ID != "":
		return s.ID == f.ID
	case f.Subject != "":
		return s.Subject == f.Subject
	default:
		return s.SID == f.SID
	}
}
