package outposttest

import (
	"net/http"
	"strings"
	"sync"
	"time"
)

// Fault makes the core misbehave for requests whose path starts with
// PathPrefix (such as "/api/v3/outposts/" or "/ws/outpost/"). Faults are
// checked in the order they were added; the first matching one applies.
type Fault struct {
	// PathPrefix selects requests; empty matches every request.
	PathPrefix string
	// Method, when set, selects only requests with that method.
	Method string
	// Status, when non-zero, answers with this status and a DRF-style
	// JSON error instead of serving the request.
	Status int
	// Delay waits before answering (or before serving, when Status and
	// Malformed are unset). A request whose client gives up stops waiting.
	Delay time.Duration
	// Malformed answers 200 with a body that is not valid JSON.
	Malformed bool
	// Drop closes the connection without any answer.
	Drop bool
	// Count is how many requests the fault applies to; 0 means until
	// ClearFaults.
	Count int
}

type faultList struct {
	mu     sync.Mutex
	faults []*faultState
}

type faultState struct {
	Fault
	used int
}

// Fault adds a fault.
func (s *Server) Fault(f Fault) {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.faults = append(s.faults.faults, &faultState{Fault: f})
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.faults = nil
}

// apply applies the first matching fault; true means the request has been
// answered.
func (l *faultList) apply(w http.ResponseWriter, r *http.Request) bool {
	l.mu.Lock()
	var f *Fault
	for i, fs := range l.faults {
		if !strings.HasPrefix(r.URL.Path, fs.PathPrefix) || fs.Method != "" && fs.Method != r.Method {
			continue
		}
		fs.used++
		cp := fs.Fault
		f = &cp
		if fs.Count > 0 && fs.used >= fs.Count {
			l.faults = append(l.faults[:i:i], l.faults[i+1:]...)
		}
		break
	}
	l.mu.Unlock()
	if f == nil {
		return false
	}
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return true
		}
	}
	switch {
	case f.Drop:
		if hj, ok := hijacker(w); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return true
			}
		}
		panic(http.ErrAbortHandler)
	case f.Status != 0:
		writeError(w, f.Status, http.StatusText(f.Status))
		return true
	case f.Malformed:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"pagination": {"next": 0, "results": [`))
		return true
	}
	return false
}

func hijacker(w http.ResponseWriter) (http.Hijacker, bool) {
	for {
		switch t := w.(type) {
		case http.Hijacker:
			return t, true
		case interface{ Unwrap() http.ResponseWriter }:
			w = t.Unwrap()
		default:
			return nil, false
		}
	}
}
