package outpost

import (
	"context"
	"log/slog"
	"strings"
)

// LevelTrace is below debug, for authentik's "trace" log level.
const LevelTrace = slog.LevelDebug - 4

// ParseLogLevel maps authentik's log_level values to slog levels: trace,
// debug, info, warning (or warn), error (critical counts as error). An empty
// value is info; any other value is debug, as authentik does, so a typo
// shows more rather than less.
func ParseLogLevel(s string) slog.Level {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "":
		return slog.LevelInfo
	case "trace":
		return LevelTrace
	case "debug":
		return slog.LevelDebug
	case "info":
		return slog.LevelInfo
	case "warning", "warn":
		return slog.LevelWarn
	case "error", "critical", "fatal":
		return slog.LevelError
	default:
		return slog.LevelDebug
	}
}

// discard is the logger used when none is given.
var discard = slog.New(slog.DiscardHandler)

func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return discard
	}
	return l
}

// levelHandler filters records below a live level before the wrapped
// handler sees them. It can only hide records: the wrapped handler's own
// level still applies, which is why hosts that want log_level to raise
// verbosity pass their handler's LevelVar in Config.LogLevel.
type levelHandler struct {
	level *slog.LevelVar
	next  slog.Handler
}

func (h levelHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.level.Level() && h.next.Enabled(ctx, l)
}

func (h levelHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.next.Handle(ctx, r)
}

func (h levelHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return levelHandler{level: h.level, next: h.next.WithAttrs(attrs)}
}

func (h levelHandler) WithGroup(name string) slog.Handler {
	return levelHandler{level: h.level, next: h.next.WithGroup(name)}
}
