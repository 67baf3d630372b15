package outposttest

import (
	"net/http"
	"strings"
	"sync"
	"time"
)

// Request is one request the core saw.
type Request struct {
	Time   time.Time
	Method string
	Path   string
	// Query is the raw query string.
	Query string
	// Header holds the request headers with Authorization, Cookie and the
	// outpost token header replaced by "REDACTED".
	Header http.Header
	// Outpost names the outpost whose token the request carried, if any.
	Outpost string
	// User is the username of the session or token the request carried.
	User string
	// Status is the answer's status code; 0 while the request runs (and
	// for websockets, until they close).
	Status int
}

type requestLog struct {
	mu   sync.Mutex
	reqs []*Request
}

// maxRequests bounds the log so a long-running core does not grow forever.
const maxRequests = 100000

func (l *requestLog) start(r *http.Request, rc *reqCtx) *Request {
	h := r.Header.Clone()
	for _, k := range []string{"Authorization", "Cookie", "X-Authentik-Outpost-Token"} {
		if h.Get(k) != "" {
			h.Set(k, "REDACTED")
		}
	}
	e := &Request{Time: time.Now(), Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: h}
	if rc.outpost != nil {
		e.Outpost = rc.outpost.name
	}
	if rc.user != nil {
		e.User = rc.user.username
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.reqs) >= maxRequests {
		// Copied, not resliced: the dropped entries stay reachable
		// through a slice's backing array.
		l.reqs = append(make([]*Request, 0, maxRequests), l.reqs[len(l.reqs)-maxRequests/2:]...)
	}
	l.reqs = append(l.reqs, e)
	return e
}

func (l *requestLog) finish(e *Request, status int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e.Status = status
}

// Requests returns a copy of the requests seen so far, oldest first.
func (s *Server) Requests() []Request {
	s.reqs.mu.Lock()
	defer s.reqs.mu.Unlock()
	out := make([]Request, len(s.reqs.reqs))
	for i, r := range s.reqs.reqs {
		out[i] = *r
		out[i].Header = r.Header.Clone()
	}
	return out
}

// RequestCount counts the requests seen so far whose path starts with
// prefix (all of them for ""), for tests that bound how often a provider
// asks the core.
func (s *Server) RequestCount(prefix string) int {
	s.reqs.mu.Lock()
	defer s.reqs.mu.Unlock()
	n := 0
	for _, r := range s.reqs.reqs {
		if strings.HasPrefix(r.Path, prefix) {
			n++
		}
	}
	return n
}

// ResetRequests forgets the requests seen so far.
func (s *Server) ResetRequests() {
	s.reqs.mu.Lock()
	defer s.reqs.mu.Unlock()
	s.reqs.reqs = nil
}
