package main

import (
	"context"
	"fmt"

	"github.com/cowjacket/formjira/internal/cli"
	"github.com/cowjacket/formjira/internal/console"
)

var consoleCommand = cli.Command{
	Name:    "console",
	Summary: "the operators' web console on CONSOLE_ADDR (overview, dead letters and replay, trace, audit; JSON API under /api/)",
	Run:     runConsole,
}

func runConsole(ctx context.Context, env cli.Env, args []string) error {
	if err := cli.NoArgs("console", args); err != nil {
		return err
	}
	return console.Run(ctx, env.Getenv, env.Stderr, func(addr string) {
		fmt.Fprintf(env.Stdout, "console on http://%s/\n", addr)
	})
}
