// Command ticketer turns form events into Jira tickets; see internal/ticketer.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/cowjacket/formjira/internal/ticketer"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	if err := ticketer.Run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		stop()
		os.Exit(1)
	}
}
