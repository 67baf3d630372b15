// Command ldap shows the LDAP provider on listeners the program makes
// itself. The provider takes any net.Listener, so the program decides where
// and how it listens: here it wraps the plain listener to log every
// accepted connection; a PROXY protocol reader or a connection limit would
// go in the same place.
//
// The LDAPS listener is passed plain too: the provider wraps it in TLS
// with the certificate the core assigns to the LDAP provider.
//
// Run it against a core with an LDAP outpost, for example the demo of
// `akoutpost testcore` (token of demo-ldap):
//
//	AUTHENTIK_HOST=http://127.0.0.1:9100 AUTHENTIK_TOKEN=... go run ./examples/ldap -ldap 127.0.0.1:3389 -ldaps 127.0.0.1:6636
//
// then try
//
//	ldapsearch -x -H ldap://127.0.0.1:3389 -D cn=ldap-bind,ou=users,dc=ldap,dc=goauthentik,dc=io -w ldap-bind-password -b dc=ldap,dc=goauthentik,dc=io '(objectClass=user)'
package main

import (
	"context"
	"flag"
	"log/slog"
	"net"
	"os"
	"os/signal"

	"github.com/akoutpost/akoutpost/ldap"
	"github.com/akoutpost/akoutpost/outpost"
)

func main() {
	ldapAddr := flag.String("ldap", "127.0.0.1:3389", "LDAP `address`")
	ldapsAddr := flag.String("ldaps", "127.0.0.1:6636", "LDAPS `address` (empty: none)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	cfg := config{CoreURL: os.Getenv("AUTHENTIK_HOST"), Token: os.Getenv("AUTHENTIK_TOKEN"), Logger: log}
	var err error
	cfg.LDAP, err = net.Listen("tcp", *ldapAddr)
	if err == nil && *ldapsAddr != "" {
		cfg.LDAPS, err = net.Listen("tcp", *ldapsAddr)
	}
	if err == nil {
		err = run(ctx, cfg)
	}
	if err != nil {
		log.Error("ldap stopped", "err", err)
		os.Exit(1)
	}
}

type config struct {
	CoreURL, Token string
	LDAP           net.Listener // plain LDAP (StartTLS possible)
	LDAPS          net.Listener // TLS from the first byte; nil: not served
	Logger         *slog.Logger // nil discards
}

// run serves LDAP until ctx ends; the provider closes the listeners.
func run(ctx context.Context, cfg config) error {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	lcfg := ldap.Config{LDAPListener: logAccepts{cfg.LDAP, log}, Token: cfg.Token}
	if cfg.LDAPS != nil {
		lcfg.LDAPSListener = logAccepts{cfg.LDAPS, log}
	}
	o, err := outpost.New(outpost.Config{CoreURL: cfg.CoreURL, Token: cfg.Token,
		Providers: map[string]outpost.Factory{"ldap": ldap.Factory(lcfg)}, Logger: log})
	if err != nil {
		return err
	}
	return o.Run(ctx)
}

// logAccepts is the program's own listener wrapper: it logs each client.
type logAccepts struct {
	net.Listener
	log *slog.Logger
}

func (l logAccepts) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.log.Info("ldap client connected", "listener", l.Addr().String(), "remote", c.RemoteAddr().String())
	}
	return c, err
}
