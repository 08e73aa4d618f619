// Command capture streams committed form rows from PostgreSQL into
// JetStream; its subcommands backfill, inspect and probe it. Each command is
// one file here; the service and the operations are internal/capture.
package main

import (
	"github.com/cowjacket/formjira/internal/capture"
	"github.com/cowjacket/formjira/internal/cli"
)

var program = cli.Program{
	Name:     "capture",
	Doc:      "streams committed rows of the form table into JetStream stream FORMS.",
	Vars:     capture.Vars,
	Commands: []cli.Command{serveCommand, backfillCommand, statusCommand, healthcheckCommand},
}

func main() {
	// Here, not in the serve command: tests run that inside their own
	// process, with nats-server in it (docs/architecture.md says why).
	capture.TuneGC()
	capture.TuneProcs()
	cli.Main(program)
}
