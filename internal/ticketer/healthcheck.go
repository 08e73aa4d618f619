package ticketer

import (
	"context"
	"fmt"

	"github.com/cowjacket/formjira/internal/telemetry"
)

// runHealthcheck is `ticketer healthcheck`: GET /healthz of the service on
// HTTP_ADDR; nil (exit 0) on 200. docker-compose runs it (no curl in the
// distroless image).
func runHealthcheck(ctx context.Context, env *Env, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("healthcheck: unexpected arguments %q", args)
	}
	return telemetry.Healthcheck(ctx, env.Config.HTTPAddr, env.Stdout)
}
