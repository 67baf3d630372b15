package outposttest

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/akoutpost/akoutpost/outpost"
)

func dialOutpost(ctx context.Context, t *testing.T, s *Server, name, instance string, attempt int) *websocket.Conn {
	t.Helper()
	var pk string
	for _, o := range s.Outposts() {
		if o.Name == name {
			pk = o.PK
		}
	}
	u := strings.Replace(s.URL(), "http", "ws", 1) + "/ws/outpost/" + pk + "/?attempt=" + strconv.Itoa(attempt) + "&instance_uuid=" + instance
	h := http.Header{"Authorization": {"Bearer " + s.Token(name)}}
	conn, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if resp.Body != nil {
		resp.Body.Close()
	}
	t.Cleanup(func() { _ = conn.CloseNow() })
	// The core registers the connection just after the handshake; wait
	// for it so messages sent next reach this connection.
	err = s.WaitFor(ctx, name, func(cs []Connection) bool {
		for _, c := range cs {
			if c.InstanceUUID == instance && c.Attempt == attempt && c.Closed.IsZero() {
				return true
			}
		}
		return false
	})
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

func TestWebsocketHelloAndAck(t *testing.T) {
	s := startDemo(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn := dialOutpost(ctx, t, s, "demo-proxy", "inst-1", 0)
	hello := outpost.Message{Instruction: outpost.InstructionHello, Args: map[string]any{"version": "1.2.3", "uuid": "inst-1"}}
	if err := wsjson.Write(ctx, conn, hello); err != nil {
		t.Fatal(err)
	}
	var got outpost.Message
	if err := wsjson.Read(ctx, conn, &got); err != nil {
		t.Fatal(err)
	}
	if got.Instruction != outpost.InstructionAck || got.Args == nil {
		t.Errorf("reply to hello = %+v, want ACK with {} args", got)
	}
	// An ACK is not acknowledged; the next message the outpost sees is
	// the trigger.
	if err := wsjson.Write(ctx, conn, outpost.Message{Instruction: outpost.InstructionAck}); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitConnected(ctx, "demo-proxy", 1); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitFor(ctx, "demo-proxy", func(cs []Connection) bool { return cs[0].Messages == 2 }); err != nil {
		t.Fatal(err)
	}
	if n := s.TriggerUpdate("demo-proxy"); n != 1 {
		t.Fatalf("TriggerUpdate reached %d instances", n)
	}
	if err := wsjson.Read(ctx, conn, &got); err != nil || got.Instruction != outpost.InstructionTriggerUpdate {
		t.Fatalf("after trigger: %+v, %v", got, err)
	}
	if n := s.TriggerUpdate("demo-ldap"); n != 0 {
		t.Errorf("the LDAP outpost's trigger reached %d proxy instances", n)
	}
	hs := s.Hellos("demo-proxy")
	if len(hs) != 1 || hs[0].InstanceUUID != "inst-1" || hs[0].Attempt != 0 || hs[0].Args["version"] != "1.2.3" {
		t.Errorf("hellos = %+v", hs)
	}
	health := call(t, client(t), "GET", s.URL()+"/api/v3/outposts/instances/"+s.Outposts()[0].PK+"/health/", s.Token("demo-proxy"), nil)
	if l, _ := health.json.([]any); len(l) != 1 || l[0].(map[string]any)["uid"] != "inst-1" {
		t.Errorf("health = %s", health.body)
	} else {
		checkSchema(t, "OutpostHealth", l[0])
	}
	cs := s.Connections("demo-proxy")
	if len(cs) != 1 || cs[0].LastHello["version"] != "1.2.3" {
		t.Errorf("connections = %+v", cs)
	}
}

func TestDropWebsockets(t *testing.T) {
	s := startDemo(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn := dialOutpost(ctx, t, s, "demo-ldap", "inst-2", 3)
	s.DropWebsockets()
	_, _, err := conn.Read(ctx)
	if code := websocket.CloseStatus(err); code != 1012 {
		t.Errorf("close status %d (%v), want 1012", code, err)
	}
	if err := s.WaitFor(ctx, "demo-ldap", func(cs []Connection) bool { return !cs[0].Closed.IsZero() }); err != nil {
		t.Fatal(err)
	}
	if c := s.Connections("demo-ldap")[0]; c.Attempt != 3 || c.InstanceUUID != "inst-2" {
		t.Errorf("connection = %+v", c)
	}
	// Stop closes websockets the same way.
	conn = dialOutpost(ctx, t, s, "demo-ldap", "inst-2", 4)
	s.Stop()
	_, _, err = conn.Read(ctx)
	if code := websocket.CloseStatus(err); code != 1012 && !errors.Is(err, context.DeadlineExceeded) && code != -1 {
		t.Errorf("close status on Stop %d", code)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
}

func TestWebsocketFault(t *testing.T) {
	s := startDemo(t)
	s.Fault(Fault{PathPrefix: "/ws/", Status: 502, Count: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u := strings.Replace(s.URL(), "http", "ws", 1) + "/ws/outpost/" + s.Outposts()[0].PK + "/"
	_, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + s.Token("demo-proxy")}}})
	if err == nil || resp == nil || resp.StatusCode != 502 {
		t.Fatalf("dial under fault: %v", err)
	}
	dialOutpost(ctx, t, s, "demo-proxy", "x", 1)
}
