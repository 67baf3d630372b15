package ldap_test

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/akoutpost/akoutpost/internal/syncbuf"
	"github.com/akoutpost/akoutpost/ldap"
	"github.com/akoutpost/akoutpost/outpost"
	"github.com/akoutpost/akoutpost/outpost/outposttest"
)

// TestProtocolLayerLogsToTheOutpost: a provider built without a Logger of
// its own used the outpost's logger for its own records but handed the
// protocol layer a discard logger, so a client's malformed messages left
// no trace. Both now log through the outpost's logger.
func TestProtocolLayerLogsToTheOutpost(t *testing.T) {
	core, err := outposttest.NewServer(e2eBlueprint(t))
	if err != nil {
		t.Fatal(err)
	}
	defer core.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logs syncbuf.Buffer
	o, err := outpost.New(outpost.Config{CoreURL: core.URL(), Token: core.Token("ldap-outpost"),
		Providers: map[string]outpost.Factory{"ldap": ldap.Factory(ldap.Config{LDAPListener: ln})}, Registerer: prometheus.NewRegistry(), UpdateJitter: -1,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	defer func() { cancel(); <-done }()
	select {
	case <-o.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("the LDAP outpost never became ready")
	}
	// A message that is well framed but holds no operation.
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte{0x30, 0x03, 0x02, 0x01, 0x01})
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 512)
	for {
		if _, err := c.Read(buf); err != nil {
			break // the server closed the connection
		}
	}
	c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "malformed message") {
		if time.Now().After(deadline) {
			t.Fatalf("the outpost's log has no word of the malformed message:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
