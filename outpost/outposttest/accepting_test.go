package outposttest

import (
	"testing"
	"time"
)

// A message sent while a websocket handshake is under way waits for it:
// the client may already hold the 101 and count itself connected.
func TestSendWaitsForHandshakes(t *testing.T) {
	s, err := NewServer(DemoBlueprint)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.hub.mu.Lock()
	s.hub.accepting++
	s.hub.mu.Unlock()
	sent := make(chan int, 1)
	go func() { sent <- s.TriggerUpdate("demo-proxy") }()
	select {
	case <-sent:
		t.Fatal("Send did not wait for the handshake under way")
	case <-time.After(100 * time.Millisecond):
	}
	s.hub.mu.Lock()
	s.hub.accepting--
	s.hub.notify()
	s.hub.mu.Unlock()
	select {
	case n := <-sent:
		if n != 0 {
			t.Errorf("sent to %d connections, want 0", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Send still waiting after the handshake ended")
	}
}
