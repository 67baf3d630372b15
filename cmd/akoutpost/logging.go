package main

import (
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/lmittmann/tint"
)

// newLogger writes coloured text on a terminal and JSON otherwise, with the
// level held in a LevelVar so the outpost's log_level applies live.
func newLogger(w io.Writer, level *slog.LevelVar) *slog.Logger {
	if f, ok := w.(*os.File); ok && isTerminal(f) {
		return slog.New(tint.NewHandler(w, &tint.Options{Level: level, TimeFormat: time.TimeOnly}))
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
