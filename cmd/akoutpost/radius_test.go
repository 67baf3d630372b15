package main

import (
	"crypto/hmac"
	"crypto/md5"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
)

// A radius token makes `run` serve RADIUS on AUTHENTIK_LISTEN__RADIUS:
// a test core with a RADIUS outpost, the command run from the
// environment, and a PAP Access-Request answered with Access-Accept.
func TestRunServesRADIUS(t *testing.T) {
	bp := filepath.Join(t.TempDir(), "radius.yaml")
	if err := os.WriteFile(bp, []byte(`version: 1
entries:
  - model: authentik_core.user
    identifiers: {username: alice}
    attrs: {password: alice-pw}
  - model: authentik_providers_radius.radiusprovider
    id: p
    identifiers: {name: wifi}
    attrs: {shared_secret: s3cret, client_networks: 127.0.0.0/8}
  - model: authentik_core.application
    identifiers: {slug: wifi}
    attrs: {name: Wi-Fi, provider: !KeyOf p}
  - model: authentik_outposts.outpost
    identifiers: {name: radius}
    attrs: {type: radius, providers: [!KeyOf p]}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	coreAddr := freeAddr(t)
	lines, stopCore := startCommand(t, nil, "testcore", "--blueprint", bp, "--listen", coreAddr)
	defer stopCore()
	token := ""
	outpostLine := regexp.MustCompile(`^outpost radius type radius token (\S+)$`)
	for lines.Scan() {
		if m := outpostLine.FindStringSubmatch(lines.Text()); m != nil {
			token = m[1]
		}
		if strings.HasPrefix(lines.Text(), "listening ") {
			break
		}
	}
	if token == "" {
		t.Fatal("testcore printed no radius outpost")
	}
	udp := freeUDPAddr(t)
	_, stopRun := startCommand(t, map[string]string{
		"AUTHENTIK_HOST": "http://" + coreAddr, "AUTHENTIK_TOKEN": token,
		"AUTHENTIK_LISTEN__RADIUS": udp, "AUTHENTIK_LISTEN__METRICS": freeAddr(t),
	}, "run")
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	to, err := net.ResolveUDPAddr("udp", udp)
	if err != nil {
		t.Fatal(err)
	}
	var code radius.Code
	waitFor(t, "an Access-Accept", func() bool {
		var ok bool
		code, ok = radiusAccess(t, conn, to, "alice", "alice-pw", "s3cret")
		return ok
	})
	if code != radius.CodeAccessAccept {
		t.Errorf("reply %v, want Access-Accept", code)
	}
	if c := stopRun(); c != 0 {
		t.Errorf("run exited %d after a signal, want 0", c)
	}
}

func freeUDPAddr(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

// radiusAccess sends one Access-Request with a Message-Authenticator, as
// a NAS does, and returns the reply's code; false when none came in time.
func radiusAccess(t *testing.T, conn net.PacketConn, to net.Addr, user, password, secret string) (radius.Code, bool) {
	t.Helper()
	pkt := radius.New(radius.CodeAccessRequest, []byte(secret))
	_ = rfc2865.UserName_SetString(pkt, user)
	_ = rfc2865.UserPassword_SetString(pkt, password)
	pkt.Add(80, make([]byte, 16))
	raw, err := pkt.Encode()
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(md5.New, []byte(secret))
	mac.Write(raw)
	copy(raw[len(raw)-16:], mac.Sum(nil))
	if _, err := conn.WriteTo(raw, to); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	_ = conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	n, _, err := conn.ReadFrom(buf)
	if err != nil {
		return 0, false
	}
	if !radius.IsAuthenticResponse(buf[:n], raw, []byte(secret)) {
		t.Fatal("a reply that does not authenticate")
	}
	return radius.Code(buf[0]), true
}
