package outpost_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/akoutpost/akoutpost/internal/syncbuf"
	"github.com/akoutpost/akoutpost/outpost"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testProvider is the smallest useful provider: it records what the
// outpost gives it.
type testProvider struct {
	typ string

	mu        sync.Mutex
	updates   []outpost.Update
	messages  []outpost.Message
	applyErr  error
	deps      outpost.Deps // what the factory was given
	built     int          // factory calls
	debugSeen []bool       // whether the lent logger had debug enabled at each Apply
	serving   int          // Serve calls in progress
	serves    int          // Serve calls made
	serveErr  error        // returned by Serve at once when set
}

var _ outpost.Provider = (*testProvider)(nil)
var _ outpost.MessageHandler = (*testProvider)(nil)

// factories offers each provider under its type.
func factories(ps ...builtProvider) map[string]outpost.Factory {
	m := make(map[string]outpost.Factory, len(ps))
	for _, p := range ps {
		m[p.kind()] = func(_ context.Context, d outpost.Deps) (outpost.Provider, error) {
			p.record(d)
			return p, nil
		}
	}
	return m
}

// builtProvider is a testProvider, or a provider that embeds one.
type builtProvider interface {
	outpost.Provider
	kind() string
	record(outpost.Deps)
}

func (p *testProvider) kind() string { return p.typ }

func (p *testProvider) record(d outpost.Deps) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.deps = d
	p.built++
}

// lent returns what the factory was given and how often it was called.
func (p *testProvider) lent() (outpost.Deps, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.deps, p.built
}

func (p *testProvider) Apply(ctx context.Context, u outpost.Update) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.applyErr != nil {
		return p.applyErr
	}
	p.updates = append(p.updates, u)
	p.debugSeen = append(p.debugSeen, p.deps.Logger.Enabled(ctx, slog.LevelDebug))
	return nil
}

func (p *testProvider) Serve(ctx context.Context) error {
	p.mu.Lock()
	p.serving++
	p.serves++
	err := p.serveErr
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.serving--
		p.mu.Unlock()
	}()
	if err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

func (p *testProvider) HandleMessage(ctx context.Context, m outpost.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.messages = append(p.messages, m)
	return nil
}

func (p *testProvider) applied() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.updates)
}

func (p *testProvider) last() outpost.Update {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.updates) == 0 {
		return outpost.Update{}
	}
	return p.updates[len(p.updates)-1]
}

// settle waits until o has started: the first configuration applied and
// the control channel up. It returns the number of Apply calls.
func settle(t *testing.T, o *outpost.Outpost, p *testProvider) int {
	t.Helper()
	eventually(t, "start-up to settle", func() bool { return o.Connected() && p.applied() >= 1 })
	return p.applied()
}

func (p *testProvider) state() (serving, serves int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.serving, p.serves
}

// eventually polls cond until it holds; the bound only keeps a broken test
// from hanging, it asserts nothing about speed.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logBuffer collects JSON log lines safely from many goroutines.
type logBuffer struct{ syncbuf.Buffer }

// records returns the logged records whose message contains msg.
func (b *logBuffer) records(msg string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(b.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		if m, _ := rec["msg"].(string); strings.Contains(m, msg) {
			out = append(out, rec)
		}
	}
	return out
}

func newLogger(level slog.Leveler) (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: level})), b
}

// runOutpost runs o until the test ends and reports Run's result.
func runOutpost(t *testing.T, o *outpost.Outpost) func() {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- o.Run(ctx) }()
	var once sync.Once
	var result error
	finish := func() {
		once.Do(func() {
			stop()
			select {
			case result = <-errc:
			case <-time.After(30 * time.Second):
				t.Errorf("Run did not return after its context ended")
			}
			if result != nil {
				t.Errorf("Run: %v", result)
			}
		})
	}
	t.Cleanup(finish)
	return finish
}

var errTest = errors.New("test failure")
