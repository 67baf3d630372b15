package main

import (
	"fmt"
	"net"
	"time"

	"github.com/pires/go-proxyproto"
)

// listen opens a TCP listener that accepts the PROXY protocol (v1 and v2)
// from the trusted ranges, as authentik's listeners do. A header from any
// other peer is refused, so an untrusted client cannot spoof its address.
func listen(addr string, trusted []string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	if len(trusted) == 0 {
		return ln, nil
	}
	policy, err := proxyproto.PolicyFromRanges(trusted, proxyproto.USE, proxyproto.REJECT)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("trusted proxy ranges: %w", err)
	}
	return &proxyproto.Listener{
		Listener:          ln,
		ConnPolicy:        policy,
		ReadHeaderTimeout: 10 * time.Second,
	}, nil
}
