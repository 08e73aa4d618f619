package main

import (
	"context"

	"github.com/cowjacket/formjira/internal/capture"
	"github.com/cowjacket/formjira/internal/cli"
)

var serveCommand = cli.Command{
	Summary: "run the service",
	Run: func(ctx context.Context, env cli.Env, args []string) error {
		if err := cli.NoArgs("", args); err != nil {
			return err
		}
		return capture.Run(ctx, env.Getenv, env.Stdout, env.Stderr)
	},
}
