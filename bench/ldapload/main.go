// Command ldapload drives an LDAP server with concurrent go-ldap clients over
// reused connections for a fixed duration and prints operations per second
// and latency percentiles, so two servers can be compared in the same run.
//
//	ldapload -addr 127.0.0.1:3389 -mode search -base dc=example,dc=org \
//	  -binddn cn=admin,dc=example,dc=org -bindpw secret -users 10000 -c 8 -d 10s
//
// In search mode each client binds once and then searches (uid=userN) for a
// random N below -users; in bind mode each client rebinds as uid=userN with
// -userpw on its connection. Connections are opened once per client because
// reuse is what a real LDAP consumer (sssd, a web app pool) does.
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"
)

type options struct {
	addr, mode, base, bindDN, bindPW, userPW, userAttr, userBase string
	fixedDN, filter                                              string
	users, clients                                               int
	duration                                                     time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.addr, "addr", "127.0.0.1:3389", "LDAP server host:port")
	flag.StringVar(&o.mode, "mode", "search", "search or bind")
	flag.StringVar(&o.base, "base", "dc=ldap,dc=goauthentik,dc=io", "search base DN")
	flag.StringVar(&o.userBase, "userbase", "", "DN suffix of users for bind mode (default ou=users,BASE)")
	flag.StringVar(&o.userAttr, "userattr", "cn", "RDN attribute of user DNs in bind mode (cn for the outpost, uid for slapd)")
	flag.StringVar(&o.bindDN, "binddn", "", "DN the search clients bind as (empty = anonymous)")
	flag.StringVar(&o.bindPW, "bindpw", "", "password of -binddn")
	flag.StringVar(&o.userPW, "userpw", "", "password of every userN in bind mode")
	flag.StringVar(&o.fixedDN, "dn", "", "bind mode: always bind as this DN instead of userN (for small demo populations)")
	flag.StringVar(&o.filter, "filter", "(uid=user%d)", "search filter; %d is replaced by N")
	flag.IntVar(&o.users, "users", 10000, "population size: N is drawn from [0, users)")
	flag.IntVar(&o.clients, "c", 8, "concurrent clients, one connection each")
	flag.DurationVar(&o.duration, "d", 10*time.Second, "duration of the run")
	flag.Parse()
	if o.userBase == "" {
		o.userBase = "ou=users," + o.base
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "ldapload:", err)
		os.Exit(1)
	}
}

// result is one client's latencies and its first error, if any.
type result struct {
	lat  []time.Duration
	errs int
	err  error
}

func run(o options) error {
	if o.mode != "search" && o.mode != "bind" {
		return fmt.Errorf("unknown -mode %q: want search or bind", o.mode)
	}
	conns := make([]*ldap.Conn, o.clients)
	for i := range conns {
		c, err := ldap.DialURL("ldap://" + o.addr)
		if err != nil {
			return fmt.Errorf("dial %s: %w", o.addr, err)
		}
		defer c.Close()
		if o.mode == "search" && o.bindDN != "" {
			if err := c.Bind(o.bindDN, o.bindPW); err != nil {
				return fmt.Errorf("bind as %s: %w", o.bindDN, err)
			}
		}
		conns[i] = c
	}
	results := make([]result, o.clients)
	deadline := time.Now().Add(o.duration)
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() { results[i] = client(o, c, deadline) })
	}
	wg.Wait()
	var all []time.Duration
	errs := 0
	for _, r := range results {
		all = append(all, r.lat...)
		errs += r.errs
		if r.err != nil && errs == r.errs {
			fmt.Fprintln(os.Stderr, "first error:", r.err)
		}
	}
	if len(all) == 0 {
		return fmt.Errorf("no operation succeeded (%d errors)", errs)
	}
	slices.Sort(all)
	pct := func(p float64) time.Duration { return all[int(p*float64(len(all)-1))] }
	fmt.Printf("mode=%s ops=%d errors=%d ops/s=%.0f p50=%s p99=%s\n", o.mode, len(all), errs,
		float64(len(all))/o.duration.Seconds(), pct(0.50), pct(0.99))
	return nil
}

func client(o options, c *ldap.Conn, deadline time.Time) result {
	var r result
	for time.Now().Before(deadline) {
		n := rand.IntN(o.users)
		start := time.Now()
		var err error
		if o.mode == "bind" {
			dn := o.fixedDN
			if dn == "" {
				dn = fmt.Sprintf("%s=user%d,%s", o.userAttr, n, o.userBase)
			}
			err = c.Bind(dn, o.userPW)
		} else {
			var res *ldap.SearchResult
			res, err = c.Search(ldap.NewSearchRequest(o.base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
				0, 0, false, strings.ReplaceAll(o.filter, "%d", strconv.Itoa(n)), []string{"uid", "cn", "mail"}, nil))
			if err == nil && len(res.Entries) == 0 {
				err = fmt.Errorf("filter for N=%d: no entry", n)
			}
		}
		if err != nil {
			r.errs++
			if r.err == nil {
				r.err = err
			}
			continue
		}
		r.lat = append(r.lat, time.Since(start))
	}
	return r
}
