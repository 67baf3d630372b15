package radius

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"layeh.com/radius"
)

// Serve answers Access-Requests on Config.RADIUSConn until ctx ends, then
// waits for authentications in flight for at most Config.DrainTimeout and
// closes the socket. Serve may be called once.
func (p *Provider) Serve(ctx context.Context) error {
	if !p.served.CompareAndSwap(false, true) {
		return errors.New("radius: Serve called twice")
	}
	conn := p.cfg.RADIUSConn
	if conn == nil {
		<-ctx.Done()
		return nil
	}
	defer conn.Close()
	// Authentications get a context of their own that outlives ctx by
	// the drain timeout, so a request in flight at shutdown still gets
	// its answer.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	var wg sync.WaitGroup
	stop := context.AfterFunc(ctx, func() {
		// Unblocks ReadFrom without closing the socket replies go out on.
		_ = conn.SetReadDeadline(time.Now())
	})
	defer stop()

	buf := make([]byte, radius.MaxPacketLength+1)
	var err error
	for {
		n, from, rerr := conn.ReadFrom(buf)
		if ctx.Err() != nil {
			break
		}
		if rerr != nil {
			var ne net.Error
			if errors.As(rerr, &ne) && ne.Timeout() {
				continue
			}
			err = fmt.Errorf("radius: reading: %w", rerr)
			break
		}
		if n > 0 {
			p.receive(work, &wg, conn, from, buf[:n])
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(p.cfg.DrainTimeout):
		cancelWork()
		<-done
	}
	// No request runs any more: end the EAP conversations and their TLS
	// goroutines.
	p.eap.closeAll()
	p.tunnels.Wait()
	return err
}

// request is an authenticated Access-Request on its way to an answer.
type request struct {
	raw    []byte
	from   net.Addr
	key    dupKey
	packet *radius.Packet
	cfg    *providerConfig
	st     *state
}

// receive judges one datagram in the read loop: only cheap checks happen
// here (parsing, the client network, Message-Authenticator, duplicates);
// the authentication runs in a goroutine of its own.
func (p *Provider) receive(ctx context.Context, wg *sync.WaitGroup, conn net.PacketConn, from net.Addr, b []byte) {
	st := p.state.Load()
	outpostName := ""
	if st != nil {
		outpostName = st.outpostName
	}
	drop := func(reason, app string, args ...any) {
		p.reject(outpostName, reason, app)
		p.logger().Debug("dropped a RADIUS packet", append([]any{"client", from.String(), "reason", reason}, args...)...)
	}
	req, reason := p.judge(st, from, b)
	if reason != "" {
		app := ""
		if req != nil && req.cfg != nil {
			app = req.cfg.AppSlug
		}
		drop(reason, app)
		return
	}
	switch s, reply := p.dups.check(req.key, req.raw); s {
	case seenRunning:
		p.logger().Debug("retransmission of a request being answered", "client", from.String())
		return
	case seenAnswered:
		p.logger().Debug("retransmission answered from the reply cache", "client", from.String())
		_, _ = conn.WriteTo(reply, from)
		return
	}
	select {
	case p.inflight <- struct{}{}:
	default:
		p.dups.forget(req.key, req.raw)
		drop(dropOverloaded, req.cfg.AppSlug)
		return
	}
	wg.Go(func() {
		defer func() { <-p.inflight }()
		reply := p.answer(ctx, req)
		if reply == nil {
			p.dups.forget(req.key, req.raw)
			return
		}
		p.dups.answer(req.key, req.raw, reply)
		if _, err := conn.WriteTo(reply, from); err != nil {
			p.logger().Warn("sending a RADIUS reply failed", "client", from.String(), "error", err)
		}
	})
}

// judge parses b and finds the provider whose secret signed it. It returns
// a drop reason when the packet is to be dropped unanswered.
func (p *Provider) judge(st *state, from net.Addr, b []byte) (*request, string) {
	if len(b) > radius.MaxPacketLength {
		return nil, dropMalformed
	}
	pkt, err := radius.Parse(b, nil)
	if err != nil {
		return nil, dropMalformed
	}
	// Octets past the Length field are padding (RFC 2865 3); the
	// authenticators cover only the packet itself.
	raw := append([]byte(nil), b[:int(b[2])<<8|int(b[3])]...)
	if pkt.Code != radius.CodeAccessRequest {
		return nil, dropUnsupportedCode
	}
	if st == nil {
		return nil, dropNotConfigured
	}
	src, ok := addrPort(from)
	if !ok {
		return nil, dropClientNetwork
	}
	cands := st.candidates(src.Addr())
	if len(cands) == 0 {
		return nil, dropClientNetwork
	}
	at := messageAuthenticator(raw)
	if at < 0 {
		return &request{cfg: soleCandidate(cands)}, dropMissingAuthenticator
	}
	for _, c := range cands {
		if verifyMessageAuthenticator(raw, at, []byte(c.cfg.Secret)) {
			pkt.Secret = []byte(c.cfg.Secret)
			return &request{raw: raw, from: from, key: dupKey{src: src, id: pkt.Identifier},
				packet: pkt, cfg: c.cfg, st: st}, ""
		}
	}
	return &request{cfg: soleCandidate(cands)}, dropInvalidAuthenticator
}

// soleCandidate names the provider of a dropped packet for the metric's
// app label when only one could have been meant.
func soleCandidate(cands []candidate) *providerConfig {
	if len(cands) == 1 {
		return cands[0].cfg
	}
	return nil
}

// addrPort is the source of a datagram, an IPv4-mapped address as IPv4.
func addrPort(a net.Addr) (netip.AddrPort, bool) {
	u, ok := a.(*net.UDPAddr)
	if !ok {
		ap, err := netip.ParseAddrPort(a.String())
		if err != nil {
			return netip.AddrPort{}, false
		}
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
	}
	ap := u.AddrPort()
	if !ap.Addr().IsValid() {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port()), true
}

// reject counts a rejected or dropped request.
func (p *Provider) reject(outpostName, reason, app string) {
	p.deps.metrics.RequestsRejected.WithLabelValues(outpostName, reason, app).Inc()
}
