package main

import (
	"context"

	"github.com/cowjacket/formjira/internal/cli"
	"github.com/cowjacket/formjira/internal/config"
	"github.com/cowjacket/formjira/internal/telemetry"
	"github.com/cowjacket/formjira/internal/ticketer"
)

// healthcheckCommand is GET /healthz of the service on HTTP_ADDR; exit 0 on
// 200. docker-compose runs it (no curl in the distroless image). Only
// HTTP_ADDR is read: a probe must not fail on, or read, other settings.
var healthcheckCommand = cli.Command{
	Name:    "healthcheck",
	Summary: "exit 0 if the service on HTTP_ADDR answers /healthz (for container health checks)",
	Run: func(ctx context.Context, env cli.Env, args []string) error {
		if err := cli.NoArgs("healthcheck", args); err != nil {
			return err
		}
		addr := config.NewReader(env.Getenv, ticketer.Vars).String("HTTP_ADDR")
		return telemetry.Healthcheck(ctx, addr, env.Stdout)
	},
}
