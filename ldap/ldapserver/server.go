package ldapserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for the zero values of Server's limits.
const (
	DefaultMaxMessageSize = 1 << 20
	DefaultMaxOpsPerConn  = 64
	DefaultMaxFilterDepth = 32
	DefaultReadTimeout    = 30 * time.Second
	DefaultWriteTimeout   = 30 * time.Second
	DefaultIdleTimeout    = 10 * time.Minute
	DefaultDrainTimeout   = 10 * time.Second
)

// maxElements bounds the BER elements of one message. A message of small
// elements decodes into far more memory than its size (a packet costs
// about 200 bytes however short its encoding), so the count is bounded as
// well as the length.
const maxElements = 1 << 16

// Server serves LDAPv3 on listeners. Its fields are read when Serve starts
// and must not change afterwards; one Server may serve several listeners
// at once (for instance LDAP with StartTLS and LDAPS). A Server must not be
// copied after its first use.
type Server struct {
	// Handler answers bind, search and compare. It is required.
	Handler Handler
	// Logger receives connection and operation failures; nil discards.
	// Log lines carry conn (the connection ID) and remote.
	Logger *slog.Logger
	// TLSConfig enables the StartTLS extended operation; its
	// GetCertificate or GetConfigForClient can choose a certificate by
	// SNI, which handlers then see in Conn.TLS().ServerName. Nil answers
	// StartTLS with protocolError, as RFC 4511 4.14.2 asks of a server
	// without TLS.
	TLSConfig *tls.Config
	// MaxMessageSize bounds an LDAPMessage in bytes. Nothing is allocated
	// for a longer one: a search or write request up to 16 times as long
	// is read past and answered adminLimitExceeded, and the connection
	// stays; anything else longer ends the connection with a notice of
	// disconnection. Zero means DefaultMaxMessageSize (1 MiB).
	MaxMessageSize int
	// MaxConns bounds the connections served at once; at the bound, Serve
	// stops accepting until one ends, leaving new clients in the
	// listener's backlog. Zero means no bound.
	MaxConns int
	// MaxOpsPerConn bounds the operations of one connection in flight;
	// beyond it the connection is not read until one finishes. Zero means
	// DefaultMaxOpsPerConn (64).
	MaxOpsPerConn int
	// MaxFilterDepth bounds the nesting of a search filter (and, with it,
	// of any BER in a message). A search with a deeper filter, or with
	// more BER elements than the layer decodes (65,536), is answered
	// adminLimitExceeded and the connection stays; another request nested
	// that deep ends the connection with a notice of disconnection. Zero
	// means DefaultMaxFilterDepth (32).
	MaxFilterDepth int
	// ReadTimeout bounds reading one message once its first byte arrived,
	// and the TLS handshake. Zero means DefaultReadTimeout (30s); negative
	// means none.
	ReadTimeout time.Duration
	// IdleTimeout closes a connection that has no operation in flight and
	// sends nothing for this long. Zero means DefaultIdleTimeout (10m);
	// negative means none.
	IdleTimeout time.Duration
	// WriteTimeout bounds writing one response; a client that does not read
	// is disconnected. Zero means DefaultWriteTimeout (30s); negative means
	// none.
	WriteTimeout time.Duration
	// DrainTimeout bounds how long Serve waits, once its context ends, for
	// operations in flight to finish before it cancels their contexts.
	// Zero means DefaultDrainTimeout (10s); negative means no wait.
	DrainTimeout time.Duration
	// SupportedControls lists OIDs of request controls the Handler
	// understands. A critical control that is neither listed nor known to
	// the layer (paging on search, ManageDsaIT) is answered
	// unavailableCriticalExtension (RFC 4511 4.1.11).
	SupportedControls []string

	nextConnID atomic.Uint64
}

// settings are a Server's fields with defaults applied, fixed for one
// Serve call.
type settings struct {
	handler        Handler
	log            *slog.Logger
	tlsConfig      *tls.Config
	maxMessageSize int
	maxOps         int
	maxConns       int
	maxFilterDepth int
	readTimeout    time.Duration
	idleTimeout    time.Duration
	writeTimeout   time.Duration
	drainTimeout   time.Duration
	controls       map[string]bool
	nextID         *atomic.Uint64
}

func pick[T int | time.Duration](v, def T) T {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

func (s *Server) settings() (*settings, error) {
	if s.Handler == nil {
		return nil, errors.New("ldapserver: Server.Handler is nil")
	}
	log := s.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	st := &settings{
		handler:        s.Handler,
		log:            log,
		tlsConfig:      s.TLSConfig,
		maxMessageSize: pick(s.MaxMessageSize, DefaultMaxMessageSize),
		maxOps:         pick(s.MaxOpsPerConn, DefaultMaxOpsPerConn),
		maxConns:       max(s.MaxConns, 0),
		maxFilterDepth: pick(s.MaxFilterDepth, DefaultMaxFilterDepth),
		readTimeout:    pick(s.ReadTimeout, DefaultReadTimeout),
		idleTimeout:    pick(s.IdleTimeout, DefaultIdleTimeout),
		writeTimeout:   pick(s.WriteTimeout, DefaultWriteTimeout),
		drainTimeout:   pick(s.DrainTimeout, DefaultDrainTimeout),
		controls:       map[string]bool{},
		nextID:         &s.nextConnID,
	}
	if st.maxMessageSize <= 0 || st.maxOps <= 0 || st.maxFilterDepth <= 0 {
		return nil, fmt.Errorf("ldapserver: MaxMessageSize, MaxOpsPerConn and MaxFilterDepth must not be negative")
	}
	for _, oid := range s.SupportedControls {
		st.controls[oid] = true
	}
	return st, nil
}

// Serve accepts connections on ln and serves each until ctx ends. Then it
// closes ln, stops reading from every connection, waits up to DrainTimeout
// for operations in flight, cancels the ones left, sends each client a
// notice of disconnection and closes the connections. It returns nil after
// a shutdown through ctx, or the listener's error; either way every
// goroutine it started has ended by then (provided the Handler returns
// when its contexts end). Serve closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	st, err := s.settings()
	if err != nil {
		ln.Close()
		return err
	}
	// serveCtx ends on ctx or when the listener fails; connections drain
	// when it ends. Operations get contexts of their own, so that draining
	// lets them finish.
	serveCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-serveCtx.Done()
		ln.Close() // unblocks Accept
	}()

	var (
		retErr error
		delay  time.Duration
		slots  chan struct{} // nil: no bound
	)
	if st.maxConns > 0 {
		slots = make(chan struct{}, st.maxConns)
	}
	for {
		if slots != nil {
			select {
			case slots <- struct{}{}:
			case <-serveCtx.Done():
			}
			if serveCtx.Err() != nil {
				break
			}
		}
		nc, err := ln.Accept()
		if err != nil {
			if slots != nil {
				<-slots
			}
			if ctx.Err() != nil {
				break
			}
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() {
				// Transient (for instance out of file descriptors): back
				// off as net/http does rather than spin or give up.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				st.log.Warn("ldap accept failed, retrying", "error", err, "delay", delay)
				select {
				case <-time.After(delay):
				case <-ctx.Done():
				}
				continue
			}
			retErr = fmt.Errorf("ldapserver: accepting connections: %w", err)
			break
		}
		delay = 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Built here, not in the accept loop: with the PROXY protocol,
			// RemoteAddr waits for the client's header.
			newConn(serveCtx, st, nc).serve(serveCtx)
			if slots != nil {
				<-slots
			}
		}()
	}
	cancel()
	wg.Wait()
	return retErr
}
