package radius

import (
	"testing"
	"time"

	"layeh.com/radius"

	"github.com/akoutpost/akoutpost/outpost/outposttest"
)

// A request in flight when the outpost shuts down still gets its answer,
// within the drain timeout.
func TestShutdownDrains(t *testing.T) {
	s := startStack(t, testBlueprint, Config{DrainTimeout: 10 * time.Second})
	s.core.Fault(outposttest.Fault{PathPrefix: "/api/v3/outposts/radius/", Delay: time.Second, Count: 1})
	n := s.nas(t)
	req := papRequest(t, "lab-secret", "alice", "alice-pw")
	if _, err := n.conn.WriteToUDP(req, n.to); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the access check to start", func() bool {
		return s.core.RequestCount("/api/v3/outposts/radius/1") > 0 ||
			s.core.RequestCount("/api/v3/outposts/radius/2") > 0
	})
	stopped := make(chan struct{})
	go func() { s.stop(); close(stopped) }()
	reply := checkReply(t, n.read(10*time.Second), req, "lab-secret")
	if reply.Code != radius.CodeAccessAccept {
		t.Errorf("reply %v", reply.Code)
	}
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("the outpost did not stop")
	}
}

// Past the drain timeout, the request in flight is abandoned without an
// answer: a reject would tell the NAS the password was wrong.
func TestShutdownAfterDrainTimeout(t *testing.T) {
	s := startStack(t, testBlueprint, Config{DrainTimeout: 100 * time.Millisecond})
	s.core.Fault(outposttest.Fault{PathPrefix: "/api/v3/outposts/radius/", Delay: 5 * time.Second, Count: 1})
	n := s.nas(t)
	req := papRequest(t, "lab-secret", "alice", "alice-pw")
	if _, err := n.conn.WriteToUDP(req, n.to); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the access check to start", func() bool {
		return s.core.RequestCount("/api/v3/outposts/radius/1") > 0 ||
			s.core.RequestCount("/api/v3/outposts/radius/2") > 0
	})
	start := time.Now()
	s.stop()
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("stopping took %v with a drain timeout of 100ms", d)
	}
	if reply := n.read(noReply); reply != nil {
		t.Errorf("answered after the drain timeout: % x", reply)
	}
}
