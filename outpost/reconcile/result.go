package reconcile

import (
	"io"
	"log/slog"
	"net/url"
)

// Result is what one reconcile changed. Objects are named "kind/name" for
// Docker ("container/NAME") and "Kind namespace/name" for Kubernetes.
type Result struct {
	Created []string `json:"created,omitempty"`
	Updated []string `json:"updated,omitempty"`
	Removed []string `json:"removed,omitempty"`
	// Skipped are objects the settings ask for that were not applied, and
	// why (a custom resource definition the cluster lacks).
	Skipped []Skip `json:"skipped,omitempty"`
}

// Skip is an object left out of a reconcile and the reason.
type Skip struct {
	Object string `json:"object"`
	Reason string `json:"reason"`
}

// Writes is the number of objects created, updated or removed.
func (r Result) Writes() int { return len(r.Created) + len(r.Updated) + len(r.Removed) }

func (r *Result) add(o Result) {
	r.Created = append(r.Created, o.Created...)
	r.Updated = append(r.Updated, o.Updated...)
	r.Removed = append(r.Removed, o.Removed...)
	r.Skipped = append(r.Skipped, o.Skipped...)
}

func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return l
}

// redactURL drops user information from a URL for errors and logs.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	u.User = nil
	return u.String()
}
