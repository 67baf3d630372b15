package radius

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/akoutpost/akoutpost/outpost/outposttest"
)

// requireTool skips a test whose client is not installed, except in CI
// (.ci/run installs Debian's freeradius-utils), where a missing client is
// a failure.
func requireTool(t *testing.T, name string) {
	t.Helper()
	_, err := exec.LookPath(name)
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required in CI: %v", name, err)
	}
	t.Skipf("%s not available (%v); .ci/run installs it (Debian's freeradius-utils)", name, err)
}

// radclient sends one request built from attrs (radclient's input
// syntax) and returns its output. One try, one second: a dropped request
// shows as "No reply".
func (s *stack) radclient(t *testing.T, secret, attrs string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "radclient", "-x", "-r", "1", "-t", "2",
		"127.0.0.1:"+strconv.Itoa(s.addr.Port), "auth", secret)
	cmd.Stdin = strings.NewReader(attrs + "\n")
	out, _ := cmd.CombinedOutput() // exit status 1 on a reject or no reply; the output says which
	return string(out)
}

func (s *stack) radtest(t *testing.T, user, password, secret string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "radtest", "-x", user, password, "127.0.0.1:"+strconv.Itoa(s.addr.Port), "0", secret)
	out, _ := cmd.CombinedOutput()
	return string(out)
}

func wantOutput(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

func TestRadclient(t *testing.T) {
	requireTool(t, "radclient")
	requireTool(t, "radtest")
	s := startStack(t, testBlueprint, Config{})
	if err := s.core.SetRadiusAttributes("wifi", outposttest.RadiusAttribute{Type: 18, Value: []byte("welcome")},
		outposttest.RadiusAttribute{Type: 25, Value: []byte("wifi-class")}); err != nil {
		t.Fatal(err)
	}
	t.Run("radtest accept", func(t *testing.T) {
		// radtest sends Message-Authenticator; radclient checks the one
		// in the reply and the Response Authenticator.
		wantOutput(t, s.radtest(t, "alice", "alice-pw", "wifi-secret"), "Received Access-Accept",
			`Reply-Message = "welcome"`, "Class = 0x776966692d636c617373", "Message-Authenticator")
	})
	t.Run("wrong password", func(t *testing.T) {
		wantOutput(t, s.radtest(t, "alice", "nope", "wifi-secret"), "Received Access-Reject")
	})
	t.Run("denied by policy", func(t *testing.T) {
		wantOutput(t, s.radtest(t, "bob", "bob-pw", "wifi-secret"), "Received Access-Reject")
	})
	t.Run("MFA", func(t *testing.T) {
		code, err := s.core.TOTPCode("carol", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		wantOutput(t, s.radtest(t, "carol", "carol-pw", "wifi-secret"), "Received Access-Reject")
		wantOutput(t, s.radtest(t, "carol", "carol-pw;"+code, "wifi-secret"), "Received Access-Accept")
	})
	t.Run("wrong shared secret", func(t *testing.T) {
		before := s.rejected(dropInvalidAuthenticator, "")
		out := s.radclient(t, "not-the-secret", `User-Name = "alice", User-Password = "alice-pw", Message-Authenticator = 0x00`)
		wantOutput(t, out, "No reply")
		if strings.Contains(out, "Received") {
			t.Errorf("answered:\n%s", out)
		}
		if got := s.rejected(dropInvalidAuthenticator, ""); got != before+1 {
			t.Errorf("invalid_message_authenticator went from %v to %v", before, got)
		}
	})
	t.Run("no Message-Authenticator", func(t *testing.T) {
		before := s.rejected(dropMissingAuthenticator, "")
		out := s.radclient(t, "wifi-secret", `User-Name = "alice", User-Password = "alice-pw"`)
		wantOutput(t, out, "No reply")
		if got := s.rejected(dropMissingAuthenticator, ""); got != before+1 {
			t.Errorf("missing_message_authenticator went from %v to %v:\n%s", before, got, out)
		}
	})
	t.Run("radclient with Message-Authenticator", func(t *testing.T) {
		out := s.radclient(t, "lab-secret", `User-Name = "bob", User-Password = "bob-pw", Message-Authenticator = 0x00`)
		wantOutput(t, out, "Received Access-Accept")
	})
	t.Run("outside client_networks", func(t *testing.T) {
		if err := s.core.UpdateProvider("lab", map[string]any{"client_networks": "127.0.0.2/32"}); err != nil {
			t.Fatal(err)
		}
		if err := s.core.UpdateProvider("wifi", map[string]any{"client_networks": "127.0.0.2/32, 10.0.0.0/8"}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the new client networks", func() bool {
			st := s.p.state.Load()
			return st != nil && len(st.candidates(s.addr.AddrPort().Addr())) == 0
		})
		before := s.rejected(dropClientNetwork, "")
		wantOutput(t, s.radclient(t, "wifi-secret", `User-Name = "alice", User-Password = "alice-pw", Message-Authenticator = 0x00`),
			"No reply")
		if got := s.rejected(dropClientNetwork, ""); got != before+1 {
			t.Errorf("client_network went from %v to %v", before, got)
		}
	})
}
