package proxy

import (
	"net/http"
	"testing"
)

// Every spelling of an identity header goes, whatever the case of the
// prefix, and so does every header with an underscore; others stay.
func TestStripClientIdentity(t *testing.T) {
	for _, tc := range []struct {
		key  string
		kept bool
	}{
		{"X-Authentik-Username", false},
		{"x-authentik-groups", false},
		{"X-AUTHENTIK-UID", false},
		{"x-AuThEnTiK-jwt", false},
		{"X_authentik_username", false},
		{"Some_header", false},
		{"X-Authentik", true}, // no trailing dash: not the prefix
		{"X-Authenticated-User", true},
		{"Accept", true},
	} {
		h := http.Header{tc.key: {"mallory"}}
		stripClientIdentity(h)
		if _, ok := h[tc.key]; ok != tc.kept {
			t.Errorf("%s: kept %v, want %v", tc.key, ok, tc.kept)
		}
	}
}
