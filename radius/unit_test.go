package radius

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestParseNetworks(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{"0.0.0.0/0, ::/0", "0.0.0.0/0 ::/0", ""},
		{"10.1.2.3/8,192.0.2.7", "10.0.0.0/8 192.0.2.7/32", ""},
		{" 2001:db8::1 , ", "2001:db8::1/128", ""},
		{"10.0.0.0/8, nonsense", "", `"nonsense" is not a CIDR`},
		{"10.0.0.0/33", "", "not a CIDR"},
		{" , ", "", "no network"},
	} {
		got, err := parseNetworks(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		var s []string
		for _, p := range got {
			s = append(s, p.String())
		}
		if err != nil || strings.Join(s, " ") != tc.want {
			t.Errorf("%q = %v, %v; want %s", tc.in, s, err, tc.want)
		}
	}
}

func TestDecodeProvider(t *testing.T) {
	p, err := decodeProvider(json.RawMessage(`{"pk": 3, "name": "n", "application_slug": "a", "auth_flow_slug": "f",
		"shared_secret": "s"}`))
	if err != nil {
		t.Fatal(err)
	}
	// authentik's defaults for absent fields: every address, MFA on.
	if !p.MFA || len(p.Networks) != 2 || p.match(netip.MustParseAddr("198.51.100.1")) != 0 {
		t.Errorf("defaults: %+v", p)
	}
	for _, bad := range []string{
		`{"pk": 1, "application_slug": "a", "auth_flow_slug": "f", "shared_secret": ""}`,
		`{"pk": 1, "application_slug": "a", "auth_flow_slug": "", "shared_secret": "s"}`,
		`{"pk": 1, "application_slug": "", "auth_flow_slug": "f", "shared_secret": "s"}`,
		`{"pk": 1, "application_slug": "a", "auth_flow_slug": "f", "shared_secret": "s", "client_networks": "x"}`,
		`[]`,
	} {
		if _, err := decodeProvider(json.RawMessage(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

// The most specific network goes first, whatever the core's order;
// authentik sorted by the address length instead of the prefix length,
// which left the core's order in place.
func TestCandidatesMostSpecificFirst(t *testing.T) {
	mk := func(name, nets string) *providerConfig {
		n, err := parseNetworks(nets)
		if err != nil {
			t.Fatal(err)
		}
		return &providerConfig{Name: name, Networks: n}
	}
	st := &state{providers: []*providerConfig{mk("all", "0.0.0.0/0"), mk("lan", "10.0.0.0/8"),
		mk("host", "10.1.1.1"), mk("v6", "::/0"), mk("site", "10.1.0.0/16, 192.0.2.0/24")}}
	var got []string
	for _, c := range st.candidates(netip.MustParseAddr("10.1.1.1")) {
		got = append(got, c.cfg.Name)
	}
	if strings.Join(got, " ") != "host site lan all" {
		t.Errorf("candidates %v", got)
	}
	if c := st.candidates(netip.MustParseAddr("2001:db8::1")); len(c) != 1 || c[0].cfg.Name != "v6" {
		t.Errorf("IPv6 candidates %v", c)
	}
}

func TestReplyCache(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newReplyCache(30*time.Second, 3, func() time.Time { return now })
	key := func(port uint16) dupKey {
		return dupKey{src: netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), port), id: 7}
	}
	req := []byte("request")
	if s, _ := c.check(key(1), req); s != seenNew {
		t.Fatalf("first: %v", s)
	}
	if s, _ := c.check(key(1), req); s != seenRunning {
		t.Fatalf("while running: %v", s)
	}
	c.answer(key(1), req, []byte("reply"))
	if s, r := c.check(key(1), req); s != seenAnswered || string(r) != "reply" {
		t.Fatalf("answered: %v %q", s, r)
	}
	if s, _ := c.check(key(1), []byte("another request")); s != seenNew {
		t.Fatalf("same identifier, other content: %v", s)
	}
	c.forget(key(1), []byte("another request"))
	if s, _ := c.check(key(1), []byte("another request")); s != seenNew {
		t.Fatalf("after forget: %v", s)
	}
	now = now.Add(31 * time.Second)
	if s, _ := c.check(key(1), []byte("another request")); s != seenNew {
		t.Fatalf("after the window: %v", s)
	}
	for p := uint16(2); p < 10; p++ {
		c.check(key(p), req)
	}
	if n := c.len(); n > 3 {
		t.Errorf("%d entries, bound 3", n)
	}
}
