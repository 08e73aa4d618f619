// Command demo brings the whole pipeline up on one machine: a private
// PostgreSQL with logical replication and the form table, an embedded
// JetStream server, the Jira sandbox with its web page, capture and
// ticketer. Everything lives under one folder (.demo); Ctrl-C stops it all,
// running it again resumes, --fresh starts over.
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
		os.Stderr.WriteString("demo: " + err.Error() + "\n")
		os.Exit(1)
	}
}
