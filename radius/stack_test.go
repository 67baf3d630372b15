package radius

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"errors"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/akoutpost/akoutpost/outpost"
	"github.com/akoutpost/akoutpost/outpost/outposttest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testBlueprint has two providers a client on loopback may belong to:
// lab (127.0.0.1/32, the more specific) and wifi (127.0.0.0/8), told
// apart by their secrets. wifi lets alice and carol (who has TOTP) in,
// not bob; lab lets everyone in and has MFA off.
const testBlueprint = `
version: 1
entries:
  - model: authentik_core.user
    id: alice
    identifiers: {username: alice}
    attrs: {password: alice-pw}
  - model: authentik_core.user
    id: bob
    identifiers: {username: bob}
    attrs: {password: bob-pw}
  - model: authentik_core.user
    id: carol
    identifiers: {username: carol}
    attrs: {password: carol-pw}
  - model: authentik_stages_authenticator_totp.totpdevice
    identifiers: {user: !KeyOf carol, name: phone}
    attrs: {key: "3132333435363738393031323334353637383930", digits: 6}
  - model: authentik_providers_radius.radiusprovider
    id: wifi
    identifiers: {name: wifi}
    attrs: {shared_secret: wifi-secret, client_networks: "10.0.0.0/8, 127.0.0.0/8", mfa_support: true}
  - model: authentik_providers_radius.radiusprovider
    id: lab
    identifiers: {name: lab}
    attrs: {shared_secret: lab-secret, client_networks: "127.0.0.1/32", mfa_support: false}
  - model: authentik_core.application
    id: wifi-app
    identifiers: {slug: wifi}
    attrs: {name: Wi-Fi, provider: !KeyOf wifi}
  - model: authentik_core.application
    identifiers: {slug: lab}
    attrs: {name: Lab, provider: !KeyOf lab}
  - model: authentik_policies.policybinding
    identifiers: {target: !KeyOf wifi-app, user: !KeyOf alice, order: 0}
  - model: authentik_policies.policybinding
    identifiers: {target: !KeyOf wifi-app, user: !KeyOf carol, order: 1}
  - model: authentik_outposts.outpost
    identifiers: {name: radius}
    attrs: {type: radius, providers: [!KeyOf wifi, !KeyOf lab]}
`

type stack struct {
	core *outposttest.Server
	p    *Provider
	addr *net.UDPAddr
	// stop ends the outpost and waits for it; the test's cleanup calls
	// it too.
	stop func()
}

// startStack runs a test core with blueprint, and an outpost with a
// RADIUS provider on a loopback port, until the test ends.
func startStack(t *testing.T, blueprint string, cfg Config) *stack {
	t.Helper()
	core, err := outposttest.NewServer([]byte(blueprint))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(core.Close)
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.RADIUSConn = conn
	o, err := outpost.New(outpost.Config{CoreURL: core.URL(), Token: core.Token("radius"),
		Providers: map[string]outpost.Factory{"radius": Factory(cfg)}, Registerer: prometheus.NewRegistry(), UpdateJitter: -1,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	stop := sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("outpost Run: %v", err)
		}
	})
	t.Cleanup(stop)
	select {
	case <-o.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("the RADIUS outpost never became ready")
	}
	return &stack{core: core, p: o.Provider().(*Provider), addr: conn.LocalAddr().(*net.UDPAddr), stop: stop}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// rejected reads the rejected-requests counter.
func (s *stack) rejected(reason, app string) float64 {
	l := s.p.deps
	return testutil.ToFloat64(l.metrics.RequestsRejected.WithLabelValues("radius", reason, app))
}

// signRequest adds a Message-Authenticator made with secret to pkt and
// encodes it.
func signRequest(t *testing.T, pkt *radius.Packet, secret []byte) []byte {
	t.Helper()
	pkt.Attributes.Del(attrMessageAuthenticator)
	pkt.Attributes.Add(attrMessageAuthenticator, make([]byte, 16))
	raw, err := pkt.Encode()
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(md5.New, secret)
	mac.Write(raw)
	copy(raw[len(raw)-16:], mac.Sum(nil))
	return raw
}

// papRequest is a signed PAP Access-Request.
func papRequest(t *testing.T, secret, user, password string) []byte {
	t.Helper()
	pkt := radius.New(radius.CodeAccessRequest, []byte(secret))
	if err := rfc2865.UserName_SetString(pkt, user); err != nil {
		t.Fatal(err)
	}
	if err := rfc2865.UserPassword_SetString(pkt, password); err != nil {
		t.Fatal(err)
	}
	rfc2865.NASIdentifier_SetString(pkt, "test-nas")
	return signRequest(t, pkt, []byte(secret))
}

// nas is a RADIUS client on a socket of its own.
type nas struct {
	t    *testing.T
	conn *net.UDPConn
	to   *net.UDPAddr
}

func (s *stack) nas(t *testing.T) *nas {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &nas{t: t, conn: conn, to: s.addr}
}

// send sends raw and returns the reply, nil when none came within wait.
func (n *nas) send(raw []byte, wait time.Duration) []byte {
	n.t.Helper()
	if _, err := n.conn.WriteToUDP(raw, n.to); err != nil {
		n.t.Fatal(err)
	}
	return n.read(wait)
}

func (n *nas) read(wait time.Duration) []byte {
	n.t.Helper()
	buf := make([]byte, 4096)
	_ = n.conn.SetReadDeadline(time.Now().Add(wait))
	k, err := n.conn.Read(buf)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		n.t.Fatal(err)
	}
	return buf[:k]
}

// checkReply verifies a reply to req as a careful NAS does: its Response
// Authenticator, and a Message-Authenticator that is its first attribute.
func checkReply(t *testing.T, reply, req []byte, secret string) *radius.Packet {
	t.Helper()
	if reply == nil {
		t.Fatal("no reply")
	}
	if !radius.IsAuthenticResponse(reply, req, []byte(secret)) {
		t.Fatal("the reply's Response Authenticator is wrong")
	}
	if reply[1] != req[1] {
		t.Fatalf("reply identifier %d to request %d", reply[1], req[1])
	}
	if len(reply) < 38 || reply[20] != attrMessageAuthenticator || reply[21] != 18 {
		t.Fatalf("the reply's first attribute is not a Message-Authenticator: % x", reply)
	}
	check := append([]byte(nil), reply...)
	copy(check[4:20], req[4:20])
	if !verifyMessageAuthenticator(check, 22, []byte(secret)) {
		t.Fatal("the reply's Message-Authenticator is wrong")
	}
	pkt, err := radius.Parse(reply, []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return pkt
}
