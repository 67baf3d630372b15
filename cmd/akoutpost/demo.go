package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/akoutpost/akoutpost/ldap"
	"github.com/akoutpost/akoutpost/outpost"
	"github.com/akoutpost/akoutpost/outpost/outposttest"
	"github.com/akoutpost/akoutpost/proxy"
	"github.com/akoutpost/akoutpost/radius"
)

// demoAddrs are the demo's listen addresses; the defaults match the demo
// blueprint's external hosts.
type demoAddrs struct {
	core, upstream, http, https, ldap, ldaps, radius, metrics string
}

// demo runs the test core with the demo blueprint, a small upstream that
// echoes the identity headers it receives, and every outpost of the
// blueprint, all in this process, then prints what to try.
func (c command) demo(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var a demoAddrs
	fs.StringVar(&a.core, "core", "127.0.0.1:9100", "test core `address`")
	fs.StringVar(&a.upstream, "upstream", "127.0.0.1:9080", "echo upstream `address`")
	fs.StringVar(&a.http, "http", "127.0.0.1:9000", "proxy HTTP `address`")
	fs.StringVar(&a.https, "https", "127.0.0.1:9443", "proxy HTTPS `address`")
	fs.StringVar(&a.ldap, "ldap", "127.0.0.1:3389", "LDAP `address`")
	fs.StringVar(&a.ldaps, "ldaps", "127.0.0.1:6636", "LDAPS `address`")
	fs.StringVar(&a.radius, "radius", "127.0.0.1:1812", "RADIUS (UDP) `address`")
	fs.StringVar(&a.metrics, "metrics", "127.0.0.1:9300", "metrics `address`")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	level := new(slog.LevelVar)
	level.Set(outpost.ParseLogLevel(c.getenv("AUTHENTIK_LOG_LEVEL")))
	log := newLogger(c.stderr, level)

	lns := map[string]net.Listener{}
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for name, addr := range map[string]string{
		"upstream": a.upstream, "http": a.http, "https": a.https,
		"ldap": a.ldap, "ldaps": a.ldaps, "metrics": a.metrics,
	} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("demo %s listener: %w", name, err)
		}
		lns[name] = ln
	}
	radiusConn, err := net.ListenPacket("udp", a.radius)
	if err != nil {
		return fmt.Errorf("demo radius socket: %w", err)
	}
	defer func() {
		if radiusConn != nil {
			radiusConn.Close()
		}
	}()
	a.radius = radiusConn.LocalAddr().String()
	// Print where things really listen, so ":0" works too.
	a.http, a.https = lns["http"].Addr().String(), lns["https"].Addr().String()
	a.ldap, a.ldaps = lns["ldap"].Addr().String(), lns["ldaps"].Addr().String()
	a.metrics = lns["metrics"].Addr().String()
	upstreamURL := "http://" + lns["upstream"].Addr().String()
	core, err := outposttest.NewUnstartedServer(outposttest.Config{
		Blueprint: outposttest.DemoBlueprint,
		Addr:      a.core,
		Logger:    log.With("component", "testcore"),
		LookupEnv: func(name string) (string, bool) {
			if name == "AKOUTPOST_DEMO_UPSTREAM" {
				return upstreamURL, true
			}
			return c.getenv(name), c.getenv(name) != ""
		},
	})
	if err != nil {
		return err
	}
	if err := core.Start(); err != nil {
		return err
	}
	defer core.Close()

	// Both outposts share one registry, served once, as a host embedding
	// two outposts would.
	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	// One result from the upstream and one from each outpost, so no
	// sender blocks after the demo stops listening.
	errs := make(chan error, 1+len(core.Outposts()))
	upstream := &http.Server{Handler: http.HandlerFunc(echoIdentity), ReadHeaderTimeout: 10 * time.Second}
	upstreamLn := lns["upstream"]
	wg.Go(func() { errs <- ignoreClosed(upstream.Serve(upstreamLn)) })
	delete(lns, "upstream")

	for _, o := range core.Outposts() {
		var f outpost.Factory
		switch o.Type {
		case "proxy":
			f = proxy.Factory(proxy.Config{HTTPListener: lns["http"], HTTPSListener: lns["https"]})
			delete(lns, "http")
			delete(lns, "https")
		case "ldap":
			f = ldap.Factory(ldap.Config{LDAPListener: lns["ldap"], LDAPSListener: lns["ldaps"], Version: version})
			delete(lns, "ldap")
			delete(lns, "ldaps")
		case "radius":
			f = radius.Factory(radius.Config{RADIUSConn: radiusConn})
			radiusConn = nil // Serve closes it
		default:
			continue
		}
		cfg := outpost.Config{
			CoreURL: core.URL(), Token: o.Token, Providers: map[string]outpost.Factory{o.Type: f},
			Logger: log, LogLevel: level, Registerer: reg,
			Version: version, BuildHash: buildHash(), UpdateJitter: -1,
		}
		if ln := lns["metrics"]; ln != nil {
			cfg.MetricsListener = ln
			delete(lns, "metrics")
		}
		op, err := outpost.New(cfg)
		if err != nil {
			return err
		}
		wg.Go(func() { errs <- op.Run(ctx) })
	}
	printDemo(c.stdout, a, core)

	select {
	case <-ctx.Done():
	case err = <-errs:
	}
	cancel()
	shutdown, done := context.WithTimeout(context.Background(), 5*time.Second)
	upstream.Shutdown(shutdown)
	done()
	wg.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

func ignoreClosed(err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// printDemo says what to try. Its lines are stable: the demo's test reads
// them.
func printDemo(w io.Writer, a demoAddrs, core *outposttest.Server) {
	_, port, _ := net.SplitHostPort(a.http)
	_, ldapPort, _ := net.SplitHostPort(a.ldap)
	fmt.Fprintf(w, `akoutpost demo is running.

  test core        %s
  proxy mode       http://whoami.localhost:%s/   (upstream echoes the identity headers)
  forward auth     curl -i -H 'X-Original-URL: http://forward.localhost:%s/' http://forward.localhost:%s/outpost.goauthentik.io/auth/nginx
                   (401 until a browser logs in at http://forward.localhost:%s/outpost.goauthentik.io/start)
  metrics          http://%s/metrics

  users            alice / alice-password   (admin, may search the whole directory)
                   bob / bob-password
                   carol / carol-password   (TOTP; LDAP bind password "carol-password;<code>")

  ldapsearch -x -H ldap://127.0.0.1:%s -D 'cn=ldap-bind,ou=users,dc=ldap,dc=goauthentik,dc=io' -w ldap-bind-password -b 'dc=ldap,dc=goauthentik,dc=io' '(objectClass=user)' cn mail
  radtest alice alice-password %s 0 demo-radius-secret

Press Ctrl-C to stop.
`, core.URL(), port, port, port, port, a.metrics, ldapPort, a.radius)
}

// echoIdentity is the demo's upstream: a page listing the identity headers
// the outpost added.
func echoIdentity(w http.ResponseWriter, r *http.Request) {
	var names []string
	for name := range r.Header {
		if strings.HasPrefix(strings.ToLower(name), "x-authentik-") || name == "Authorization" || strings.HasPrefix(name, "X-Demo") {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, "<!doctype html><title>akoutpost demo upstream</title><h1>Hello from the upstream</h1><p>%s %s</p><table>\n",
		html.EscapeString(r.Method), html.EscapeString(r.URL.RequestURI()))
	for _, name := range names {
		fmt.Fprintf(w, "<tr><th>%s</th><td>%s</td></tr>\n", html.EscapeString(name), html.EscapeString(strings.Join(r.Header.Values(name), ", ")))
	}
	fmt.Fprintln(w, "</table>")
}
