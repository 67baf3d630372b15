package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/akoutpost/akoutpost/outpost/outposttest"
)

// testcore serves only the test core, for scripts and other processes: one
// line per outpost, then the URL, then it runs until a signal.
func (c command) testcore(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("testcore", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	blueprint := fs.String("blueprint", "", "authentik blueprint `file` (default: the demo blueprint)")
	addr := fs.String("listen", "127.0.0.1:9100", "`address` to serve on")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	bp := outposttest.DemoBlueprint
	if *blueprint != "" {
		b, err := os.ReadFile(*blueprint)
		if err != nil {
			return fmt.Errorf("reading the blueprint: %w", err)
		}
		bp = b
	}
	level := new(slog.LevelVar)
	core, err := outposttest.NewUnstartedServer(outposttest.Config{
		Blueprint: bp, Addr: *addr, Logger: newLogger(c.stderr, level),
	})
	if err != nil {
		return err
	}
	if err := core.Start(); err != nil {
		return err
	}
	defer core.Close()
	for _, o := range core.Outposts() {
		fmt.Fprintf(c.stdout, "outpost %s type %s token %s\n", o.Name, o.Type, o.Token)
	}
	for _, t := range core.APITokens() {
		fmt.Fprintf(c.stdout, "token %s %s\n", t.Identifier, t.Key)
	}
	fmt.Fprintf(c.stdout, "listening %s\n", core.URL())
	<-ctx.Done()
	return nil
}
