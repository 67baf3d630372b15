package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
)

// countCore serves a reverse proxy to the core at -target that counts the
// requests it passes, by method and path, and the TCP connections opened
// to it, and lists the counts at GET /.bench/counts (never passed on):
// "N METHOD PATH" lines, and "N CONNECTIONS opened". It prints "listening URL" once it
// serves, and runs until SIGINT or SIGTERM.
func countCore(args []string) error {
	fs := flag.NewFlagSet("count-core", flag.ContinueOnError)
	target := fs.String("target", "", "`URL` of the core")
	listen := fs.String("listen", "127.0.0.1:0", "`address` to serve on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	u, err := url.Parse(*target)
	if err != nil || u.Host == "" {
		return fmt.Errorf("-target %q is not a URL", *target)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	c := &counter{counts: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 1024, ForceAttemptHTTP2: false}
	srv := &http.Server{Handler: c.handler(rp), ConnState: func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			c.mu.Lock()
			c.conns++
			c.mu.Unlock()
		}
	}}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	fmt.Printf("listening http://%s\n", ln.Addr())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// printCounts prints the counts of the proxy at the URL args[0].
func printCounts(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: radiusload counts URL")
	}
	resp, err := http.Get(strings.TrimSuffix(args[0], "/") + "/.bench/counts")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", args[0], resp.Status)
	}
	_, err = io.Copy(os.Stdout, resp.Body)
	return err
}

// counter counts requests by method and path, and the TCP connections
// the core's clients opened.
type counter struct {
	mu     sync.Mutex
	counts map[string]int
	conns  int
}

func (c *counter) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/.bench/counts" {
			c.mu.Lock()
			keys := make([]string, 0, len(c.counts))
			for k := range c.counts {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			w.Header().Set("Content-Type", "text/plain")
			for _, k := range keys {
				fmt.Fprintf(w, "%d %s\n", c.counts[k], k)
			}
			fmt.Fprintf(w, "%d CONNECTIONS opened\n", c.conns)
			c.mu.Unlock()
			return
		}
		c.mu.Lock()
		c.counts[r.Method+" "+r.URL.Path]++
		c.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}
