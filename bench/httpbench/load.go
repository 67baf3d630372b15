package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"
)

// listenAndServeTLS serves h on addr over TLS with a self-signed
// certificate, offering h2 and http/1.1 as the outpost's HTTPS listener
// does.
func listenAndServeTLS(addr string, h http.Handler) error {
	cert, err := selfSigned()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*cert}, NextProtos: []string{"h2", "http/1.1"}}
	s := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, Protocols: new(http.Protocols)}
	s.Protocols.SetHTTP1(true)
	s.Protocols.SetHTTP2(true)
	return s.Serve(tls.NewListener(ln, conf))
}

func selfSigned() (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "httpbench"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"*"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// load is a load generator over HTTPS for what wrk cannot do, HTTP/2:
// -conns TLS connections with -streams requests in flight on each (for
// http/1.1, conns × streams connections with one each). Every response
// must be 200 with the upstream's body, over the protocol asked for;
// anything else ends the run with an error. It prints
// "Requests/sec: R" and "99%: L ms", and p50.
func load(args []string) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	connect := fs.String("connect", "", "address to connect to for -url's host")
	target := fs.String("url", "", "URL to request, e.g. https://app.bench/")
	proto := fs.String("proto", "h2", "protocol to negotiate: h2 or http/1.1")
	conns := fs.Int("conns", 8, "TLS connections (h2)")
	streams := fs.Int("streams", 8, "requests in flight per connection (h2); for http/1.1 conns × streams connections")
	duration := fs.Duration("duration", 10*time.Second, "how long to send requests")
	cookie := fs.String("cookie", "", "Cookie header to send")
	if err := fs.Parse(args); err != nil {
		return err
	}
	u, err := url.Parse(*target)
	if err != nil || u.Scheme != "https" || *connect == "" {
		return errors.New("load: -url https://... and -connect are required")
	}
	if *proto != "h2" && *proto != "http/1.1" {
		return fmt.Errorf("load: -proto %q is neither h2 nor http/1.1", *proto)
	}
	if *conns < 1 || *streams < 1 {
		return errors.New("load: -conns and -streams must be at least 1")
	}
	newTransport := func() *http.Transport {
		d := &net.Dialer{Timeout: 10 * time.Second}
		tr := &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return d.DialContext(ctx, network, *connect)
			},
			TLSClientConfig:     &tls.Config{InsecureSkipVerify: true, ServerName: u.Hostname(), NextProtos: []string{*proto}},
			MaxIdleConnsPerHost: *conns * *streams,
			DisableCompression:  true,
		}
		if *proto == "h2" {
			tr.ForceAttemptHTTP2 = true
		}
		return tr
	}
	// One transport per h2 connection: a transport multiplexes all its
	// requests to one host over one connection.
	transports := make([]*http.Transport, *conns)
	for i := range transports {
		if i == 0 || *proto == "h2" {
			transports[i] = newTransport()
		} else {
			transports[i] = transports[0]
		}
	}
	defer func() {
		for _, tr := range transports {
			tr.CloseIdleConnections()
		}
	}()
	wantMajor := 2
	if *proto == "http/1.1" {
		wantMajor = 1
	}

	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	workers := *conns * *streams
	lat := make([][]time.Duration, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		c := &http.Client{Transport: transports[w%*conns], Timeout: 30 * time.Second}
		wg.Go(func() {
			lat[w] = make([]time.Duration, 0, 1<<14)
			for ctx.Err() == nil {
				t0 := time.Now()
				err := once(c, *target, *cookie, wantMajor)
				if err != nil {
					if ctx.Err() != nil {
						return // cut at the end of the run
					}
					errs[w] = err
					cancel()
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("load: %w", err)
	}
	all := slices.Concat(lat...)
	if len(all) == 0 {
		return errors.New("load: no request completed")
	}
	slices.Sort(all)
	ms := func(q float64) float64 {
		return float64(all[int(q*float64(len(all)-1))]) / float64(time.Millisecond)
	}
	fmt.Printf("Requests/sec: %.0f\n", float64(len(all))/elapsed.Seconds())
	fmt.Printf("50%%: %.3f ms\n99%%: %.3f ms\n", ms(0.50), ms(0.99))
	return nil
}

// once sends one request and checks its answer.
func once(c *http.Client, target, cookie string, wantMajor int) error {
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != wantMajor || string(body) != string(upstreamBody) {
		return fmt.Errorf("status %d over %s: %.200q", resp.StatusCode, resp.Proto, body)
	}
	return nil
}
