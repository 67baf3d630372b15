package outpost_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/akoutpost/akoutpost/outpost"
)

// The core must not depend on a provider: proxy, ldap and third-party
// providers are peers behind outpost.Provider. This checks the package's
// whole dependency graph, not only its direct imports.
func TestNoProviderDependency(t *testing.T) {
	const mod = "github.com/akoutpost/akoutpost"
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", mod+"/outpost").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list found only %v", deps)
	}
	for _, d := range deps {
		for _, banned := range []string{mod + "/proxy", mod + "/ldap", mod + "/outpost/flow", mod + "/outpost/outposttest", mod + "/cmd"} {
			if d == banned || strings.HasPrefix(d, banned+"/") {
				t.Errorf("package outpost depends on %s", d)
			}
		}
	}
}

// On shutdown the outpost says goodbye with a normal closure (1000), so the
// core forgets the instance at once instead of after its hello timeout.
func TestShutdownClosesWebsocketNormally(t *testing.T) {
	core := newFakeCore(t, testOutpost())
	core.start("")
	p := &testProvider{typ: "test"}
	o := newOutpost(t, outpost.Config{CoreURL: core.url(), Providers: factories(p)})
	stop := runOutpost(t, o)
	eventually(t, "connected", func() bool { return o.Connected() && core.connections() == 1 })
	stop()
	eventually(t, "the close frame", func() bool {
		core.mu.Lock()
		defer core.mu.Unlock()
		return len(core.closes) == 1
	})
	core.mu.Lock()
	defer core.mu.Unlock()
	if core.closes[0] != websocket.StatusNormalClosure {
		t.Errorf("closed with %v, want 1000", core.closes[0])
	}
	if serving, _ := p.state(); serving != 0 {
		t.Error("Run returned while the provider was still serving")
	}
}
