package outpost_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/akoutpost/akoutpost/outpost"
)

// TestTokenFileRotationEndToEnd: the token is read from a file, as
// AUTHENTIK_TOKEN=file:///… does. When the file is replaced (a rotated
// Secret) and the old token revoked, API calls and the control channel
// move to the new token without a restart; the provider keeps serving.
func TestTokenFileRotationEndToEnd(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "token")
	if err := os.WriteFile(path, []byte("old-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	op := testOutpost()
	op.Token = "old-token"
	core := newFakeCore(t, op)
	core.start("")
	p := &testProvider{typ: "test"}
	o, err := outpost.New(outpost.Config{CoreURL: core.url(), TokenFile: path, Providers: factories(p)})
	if err != nil {
		t.Fatal(err)
	}
	stop := runOutpost(t, o)
	defer stop()
	<-o.Ready()
	eventually(t, "the control channel", func() bool { return core.connections() == 1 })

	// Rotate: a new file renamed over the old one, the old token revoked.
	tmp := filepath.Join(dir, "token.new")
	if err := os.WriteFile(tmp, []byte("new-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	core.edit(func() {
		delete(core.outposts, "old-token")
		core.outposts["new-token"] = op
	})
	core.dropWebsockets(websocket.StatusPolicyViolation)
	eventually(t, "a refresh and a websocket with the new token", func() bool {
		o.Refresh()
		var api, ws bool
		for _, r := range core.requestList() {
			if r.Header.Get("Authorization") != "Bearer new-token" {
				continue
			}
			if strings.Contains(r.Path, "/ws/outpost/") {
				ws = true
			} else {
				api = true
			}
		}
		return api && ws && core.connections() == 1
	})
	p.mu.Lock()
	serves := p.serves
	p.mu.Unlock()
	if serves != 1 {
		t.Fatalf("the provider was started %d times, want once", serves)
	}
}
