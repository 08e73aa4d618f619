package main

import (
	"context"

	"github.com/cowjacket/formjira/internal/cli"
	"github.com/cowjacket/formjira/internal/ticketer"
)

var serveCommand = cli.Command{
	Summary: "run the service: consume FORMS, create tickets",
	Run: func(ctx context.Context, env cli.Env, args []string) error {
		if err := cli.NoArgs("", args); err != nil {
			return err
		}
		return ticketer.Run(ctx, env.Getenv, env.Stdout, env.Stderr)
	},
}
