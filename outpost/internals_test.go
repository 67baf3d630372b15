package outpost_test

import (
	"testing"
	"time"

	"github.com/akoutpost/akoutpost/outpost"
)

func TestRefreshInterval(t *testing.T) {
	cases := []struct {
		seconds int
		want    time.Duration
	}{
		{-1, 5 * time.Minute},
		{0, 5 * time.Minute},
		{1, 30 * time.Second},
		{29, 30 * time.Second},
		{30, 30 * time.Second},
		{300, 5 * time.Minute},
		{3600, time.Hour},
	}
	for _, c := range cases {
		if got := outpost.RefreshInterval(c.seconds); got != c.want {
			t.Errorf("refresh_interval_s=%d: %v, want %v", c.seconds, got, c.want)
		}
	}
}

// The websocket URL as authentik builds it (issue #12464 was a change to
// it that broke deployments): scheme mapped, path prefix kept, trailing
// slash, host query parameters kept, keys sorted.
func TestControlURL(t *testing.T) {
	const pk = "0c3a4d1e-8a7b-4f0e-9d61-0a1b2c3d4e5f"
	const inst = "11111111-2222-3333-4444-555555555555"
	cases := []struct {
		core    string
		attempt int
		want    string
	}{
		{"http://localhost:9000", 0, "ws://localhost:9000/ws/outpost/" + pk + "/?attempt=0&instance_uuid=" + inst},
		{"https://auth.example/", 3, "wss://auth.example/ws/outpost/" + pk + "/?attempt=3&instance_uuid=" + inst},
		{"http://localhost:9000/foo/bar/", 0, "ws://localhost:9000/foo/bar/ws/outpost/" + pk + "/?attempt=0&instance_uuid=" + inst},
		{"http://localhost:9000/foo/bar", 0, "ws://localhost:9000/foo/bar/ws/outpost/" + pk + "/?attempt=0&instance_uuid=" + inst},
		{"http://localhost:9000?foo=bar", 1, "ws://localhost:9000/ws/outpost/" + pk + "/?attempt=1&foo=bar&instance_uuid=" + inst},
		// A unix socket: the socket is dialed, the URL names localhost.
		{"unix:///run/authentik/core.sock?foo=bar", 0, "ws://localhost/ws/outpost/" + pk + "/?attempt=0&foo=bar&instance_uuid=" + inst},
	}
	for _, c := range cases {
		o, err := outpost.New(outpost.Config{CoreURL: c.core, Token: "t", InstanceUUID: inst,
			Providers: factories(&testProvider{typ: "proxy"})})
		if err != nil {
			t.Fatal(err)
		}
		if got := o.ControlURL(pk, c.attempt); got != c.want {
			t.Errorf("%s attempt %d:\n got %s\nwant %s", c.core, c.attempt, got, c.want)
		}
	}
}
