package main

import (
	"context"
	"os"
	"runtime/debug"

	"github.com/cowjacket/formjira/internal/capture"
	"github.com/cowjacket/formjira/internal/cli"
)

var serveCommand = cli.Command{
	Summary: "run the service",
	Run: func(ctx context.Context, env cli.Env, args []string) error {
		if err := cli.NoArgs("capture", args); err != nil {
			return err
		}
		tuneGC()
		return capture.Run(ctx, env.Getenv, env.Stdout, env.Stderr)
	},
}

// tuneGC trades memory capture does not need for CPU it does: its live heap
// is small and bounded (MAX_IN_FLIGHT rows), while every row allocates, so
// the default GOGC=100 collects very often. A soft limit keeps the heap far
// below the memory budget whatever the rate. GOGC / GOMEMLIMIT set in the
// process environment (which the Go runtime reads) win. See BENCHMARKS.md.
func tuneGC() {
	if _, ok := os.LookupEnv("GOGC"); !ok {
		debug.SetGCPercent(400)
	}
	if _, ok := os.LookupEnv("GOMEMLIMIT"); !ok {
		debug.SetMemoryLimit(96 << 20)
	}
}
