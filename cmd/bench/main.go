// Command bench measures capture the way BENCHMARKS.md reports it: on its
// own private PostgreSQL (localpg) and nats-server (localnats), with a
// backlog of single-row transactions written by pgbench, capture drained
// against pg_recvlogical reading the same WAL from a second slot, peak RSS
// of a capture process, and commit → JetStream latency at a steady rate.
//
//	go run ./cmd/bench capture [flags]
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		os.Stderr.WriteString("bench: " + err.Error() + "\n")
		os.Exit(1)
	}
}
