package main

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"go.uber.org/goleak"

	"github.com/akoutpost/akoutpost/internal/syncbuf"
	"github.com/akoutpost/akoutpost/outpost/outposttest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	baseDN   = "dc=ldap,dc=goauthentik,dc=io"
	bindDN   = "cn=ldap-bind,ou=users," + baseDN
	bindPass = "ldap-bind-password"
)

func TestLDAP(t *testing.T) {
	core, err := outposttest.NewServer(outposttest.DemoBlueprint)
	if err != nil {
		t.Fatal(err)
	}
	defer core.Close()
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	secure, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, config{CoreURL: core.URL(), Token: core.Token("demo-ldap"),
			LDAP: plain, LDAPS: secure, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	// The core's certificate for the LDAP provider is self-signed.
	tlsConf := &tls.Config{InsecureSkipVerify: true, ServerName: "ldap.localhost"}
	tests := []struct {
		name string
		url  string
	}{
		{"ldap", "ldap://" + plain.Addr().String()},
		{"ldaps", "ldaps://" + secure.Addr().String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := bind(t, tt.url, tlsConf)
			defer c.Close()
			res, err := c.Search(goldap.NewSearchRequest(baseDN, goldap.ScopeWholeSubtree,
				goldap.NeverDerefAliases, 0, 0, false, "(objectClass=user)", []string{"cn", "mail"}, nil))
			if err != nil {
				t.Fatalf("search: %v", err)
			}
			var names []string
			for _, e := range res.Entries {
				names = append(names, e.GetAttributeValue("cn"))
			}
			for _, want := range []string{"alice", "bob", "carol"} {
				if !slices.Contains(names, want) {
					t.Errorf("search as ldap-bind: users %v lack %s", names, want)
				}
			}
		})
	}
	if !strings.Contains(logs.String(), "ldap client connected") {
		t.Errorf("the program's listener wrapper logged nothing:\n%s", logs)
	}
}

// bind dials and binds as the demo's bind account, retrying until the
// outpost has applied its configuration.
func bind(t *testing.T, url string, tlsConf *tls.Config) *goldap.Conn {
	t.Helper()
	var err error
	for range 200 {
		var c *goldap.Conn
		if c, err = goldap.DialURL(url, goldap.DialWithTLSConfig(tlsConf)); err == nil {
			if err = c.Bind(bindDN, bindPass); err == nil {
				return c
			}
			c.Close()
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("bind to %s as ldap-bind: %v", url, err)
	return nil
}
