package outposttest

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // RFC 6238 TOTP is defined over HMAC-SHA1
	"encoding/binary"
	"fmt"
	"time"
)

// totpAt computes the RFC 6238 code of key for time step counter.
func totpAt(key []byte, counter int64, digits int) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(counter))
	mac := hmac.New(sha1.New, key)
	mac.Write(msg[:])
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", digits, v%mod)
}

// counter is the device's time step at t, as django-otp's TOTP.t counts
// it: steps since t0, plus the drift.
func (d *totpDevice) counter(t time.Time) int64 {
	return (t.Unix()-int64(d.t0))/int64(d.step) + int64(d.drift)
}

// check accepts the code of the current step or of up to the device's
// tolerance (1 by default) steps either side, as django-otp's TOTPDevice
// does, and refuses a replayed step.
func (d *totpDevice) check(code string, now time.Time) bool {
	cur := d.counter(now)
	tol := int64(d.tolerance)
	for c := cur - tol; c <= cur+tol; c++ {
		if c <= d.lastCode {
			continue
		}
		if constantTimeEqual(totpAt(d.key, c, d.digits), code) {
			d.lastCode = c
			t := now
			d.lastUsed = &t
			return true
		}
	}
	return false
}

// TOTPCode returns the current code of the user's first TOTP device, for
// tests that log in with MFA.
func (s *Server) TOTPCode(username string, at time.Time) (string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, d := range s.m.totp {
		if d.user.username == username {
			return totpAt(d.key, d.counter(at), d.digits), nil
		}
	}
	return "", fmt.Errorf("outposttest: user %q has no TOTP device", username)
}
