package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
)

// command is the CLI with its process surroundings passed in, so tests run
// it in-process.
type command struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	// usr1 delivers SIGUSR1 to the run command; nil in tests.
	usr1 <-chan os.Signal
}

const usage = `usage: akoutpost [run | healthcheck | version | manifests kubernetes|compose |
                  controller [status] | testcore --blueprint FILE --listen ADDR | demo]`

// errUsage marks mistakes on the command line: they print the usage too.
var errUsage = errors.New("usage")

func (c command) main(ctx context.Context, args []string) int {
	name := "run"
	if len(args) > 0 {
		name, args = args[0], args[1:]
	}
	var err error
	switch name {
	case "run":
		err = c.run(ctx, args)
	case "healthcheck":
		err = c.healthcheck(ctx, args)
	case "version", "--version", "-v":
		fmt.Fprintln(c.stdout, fullVersion())
	case "manifests":
		err = c.manifests(ctx, args)
	case "controller":
		err = c.controller(ctx, args)
	case "testcore":
		err = c.testcore(ctx, args)
	case "demo":
		err = c.demo(ctx, args)
	case "help", "-h", "--help":
		fmt.Fprintln(c.stdout, usage)
	default:
		err = fmt.Errorf("%w: unknown command %q", errUsage, name)
	}
	if err == nil {
		return 0
	}
	fmt.Fprintf(c.stderr, "akoutpost %s: %v\n", name, err)
	if errors.Is(err, errUsage) || errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(c.stderr, usage)
		return 2
	}
	return 1
}

func (c command) healthcheck(ctx context.Context, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("%w: healthcheck takes no arguments", errUsage)
	}
	env, err := readEnvironment(c.getenv, false)
	if err != nil {
		return err
	}
	return healthcheck(ctx, env.ListenMetrics)
}

// buildHash is the VCS revision the binary was built from, if recorded; it
// is reported to the core like authentik's GIT_BUILD_HASH.
func buildHash() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return ""
}

// version is reported to the core in hellos and the User-Agent. It names the
// authentik release whose API this implements, so the core's version check
// compares like with like; release builds may override it with
// -ldflags "-X main.version=...".
var version = "2026.2.3"

// fullVersion is authentik's "<version>+<build hash>" form.
func fullVersion() string {
	if h := buildHash(); h != "" {
		return version + "+" + h
	}
	return version
}
