// Command capture streams committed form rows from PostgreSQL into JetStream.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/cowjacket/formjira/internal/capture"
)

func main() {
	tuneGC()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := capture.Run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "capture:", err)
		os.Exit(1)
	}
}

// tuneGC trades memory capture does not need for CPU it does: its live heap
// is small and bounded (MAX_IN_FLIGHT rows), while every row allocates, so
// the default GOGC=100 collects very often. A soft limit keeps the heap far
// below the 150 MB budget whatever the rate. GOGC / GOMEMLIMIT set in the
// environment win. See BENCHMARKS.md.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(96 << 20)
	}
}
