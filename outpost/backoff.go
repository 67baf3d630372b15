package outpost

import (
	"bytes"
	"context"
	"time"
)

// backoff yields jittered exponential delays between min and max. Each
// delay is random in [d/2, d) where d doubles per attempt: replicas that
// lost the core together come back spread out, and the delay a log line
// reports is the one actually waited.
type backoff struct {
	min, max time.Duration
	n        int
}

func (b *backoff) next() time.Duration {
	d := jitter(expDuration(b.min, b.max, b.n))
	if b.n < 62 {
		b.n++
	}
	return d
}

func (b *backoff) reset() { b.n = 0 }

// sleep waits d or until ctx ends; it reports whether the full wait
// happened.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
