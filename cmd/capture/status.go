package main

import (
	"context"

	"github.com/cowjacket/formjira/internal/capture"
	"github.com/cowjacket/formjira/internal/cli"
)

var statusCommand = cli.Command{
	Name:    "status",
	Summary: "slot, publication, confirmed LSN, lag, stream state",
	Run: func(ctx context.Context, env cli.Env, args []string) error {
		if err := cli.NoArgs("status", args); err != nil {
			return err
		}
		cfg, err := capture.LoadConfig(env.Getenv)
		if err != nil {
			return err
		}
		return capture.Status(ctx, cfg, env.Stdout)
	},
}
