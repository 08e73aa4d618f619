package main

import (
	"context"

	"github.com/cowjacket/formjira/internal/capture"
	"github.com/cowjacket/formjira/internal/cli"
	"github.com/cowjacket/formjira/internal/config"
	"github.com/cowjacket/formjira/internal/telemetry"
)

var healthcheckCommand = cli.Command{
	Name:    "healthcheck",
	Summary: "GET /healthz of the capture on HTTP_ADDR (2 s timeout); exit 0 when healthy",
	Run: func(ctx context.Context, env cli.Env, args []string) error {
		if err := cli.NoArgs("healthcheck", args); err != nil {
			return err
		}
		// Only HTTP_ADDR matters: a probe must not fail on, or read, the
		// service's other settings (DATABASE_URL is a secret).
		addr := config.NewReader(env.Getenv, capture.Vars).String("HTTP_ADDR")
		return telemetry.Healthcheck(ctx, addr, env.Stdout)
	},
}
