package radius

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"net/netip"
	"sync"
	"time"
)

// EAP sessions: a conversation of several Access-Request/Access-Challenge
// round trips, tied together by the State attribute.
const (
	// eapSessionTTL bounds one EAP conversation from its first packet.
	eapSessionTTL = 60 * time.Second
	// maxEAPSessions bounds the conversations held at once; each holds a
	// TLS session and a goroutine.
	maxEAPSessions = 1024
)

// eapSession is one EAP conversation.
type eapSession struct {
	mu sync.Mutex // one round trip at a time

	state      []byte // the State attribute that names it
	providerPK int
	nas        netip.Addr
	expires    time.Time

	id       byte // identifier of the last EAP-Request sent
	method   byte // eapTypePEAP, eapTypeTTLS or eapTypeTLS
	outer    string
	tunnel   *tunnel // set before the session is shared, never changed
	in       []byte  // fragments of the client's TLS message so far
	out      []byte  // our TLS message still to send
	outLen   int     // the whole message's length, for the L flag
	peap     peapState
	tlsAuth  tlsAuthState // EAP-TLS
	finished bool
}

// eapSessions holds the conversations in progress.
type eapSessions struct {
	now func() time.Time
	wg  *sync.WaitGroup // the tunnels' goroutines

	mu sync.Mutex
	m  map[string]*eapSession
}

func newEAPSessions(now func() time.Time, wg *sync.WaitGroup) *eapSessions {
	return &eapSessions{now: now, wg: wg, m: map[string]*eapSession{}}
}

// start opens a conversation with a TLS server of cfg, or returns nil
// when too many are open.
func (s *eapSessions) start(providerPK int, nas netip.Addr, cfg *tls.Config) *eapSession {
	state := make([]byte, 16)
	_, _ = rand.Read(state)
	sess := &eapSession{state: state, providerPK: providerPK, nas: nas, expires: s.now().Add(eapSessionTTL)}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
	if len(s.m) >= maxEAPSessions {
		return nil
	}
	sess.tunnel = newTunnel(s.wg, cfg)
	s.m[hex.EncodeToString(state)] = sess
	return sess
}

// find returns the conversation a State names, if it is the same
// provider's and NAS's and still open.
func (s *eapSessions) find(state []byte, providerPK int, nas netip.Addr) *eapSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
	sess := s.m[hex.EncodeToString(state)]
	if sess == nil || sess.providerPK != providerPK || sess.nas != nas {
		return nil
	}
	return sess
}

// end closes a conversation.
func (s *eapSessions) end(sess *eapSession) {
	s.mu.Lock()
	delete(s.m, hex.EncodeToString(sess.state))
	s.mu.Unlock()
	sess.tunnel.close()
}

func (s *eapSessions) expireLocked() {
	now := s.now()
	for k, sess := range s.m {
		if now.After(sess.expires) {
			delete(s.m, k)
			sess.tunnel.close()
		}
	}
}

// closeAll ends every conversation (at shutdown).
func (s *eapSessions) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, sess := range s.m {
		delete(s.m, k)
		sess.tunnel.close()
	}
}
