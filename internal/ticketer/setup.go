package ticketer

import (
	"context"
	"log/slog"
	"time"

	"github.com/sethvargo/go-retry"
)

// setupAttemptTimeout bounds attempt n (1-based) at creating or updating
// the streams, the bucket and the consumer: 2 s for the first three, then
// doubling up to 10 s. nats-server may leave concurrent creates of the same
// clustered stream unanswered (replicas rolled out together, cf.
// nats-server#3677), and replicas started together race again at each of
// FORMS, FORMS_TICKETS, FORMS_DLQ and the consumer: each loser must give up
// soon and retry, and the retry takes the update path, answered at once. A
// slow cluster still gets the time it needs from the later attempts.
func setupAttemptTimeout(n int) time.Duration {
	return min(2*time.Second<<min(max(n-3, 0), 3), 10*time.Second)
}

// setup runs once (creating or updating what the service needs) until it
// succeeds or ctx ends, each attempt bounded by setupAttemptTimeout, with
// capped exponential backoff and jitter in between. Each failure is logged
// once, with its attempt number. A failure forbidden names (a permission
// the server refuses) ends it: retrying cannot cure that.
func setup(ctx context.Context, log *slog.Logger, forbidden func() error, once func(context.Context) error) error {
	attempt := 0
	b := retry.WithJitterPercent(20, retry.WithCappedDuration(5*time.Second, retry.NewExponential(250*time.Millisecond)))
	err := retry.Do(ctx, b, func(ctx context.Context) error {
		attempt++
		actx, cancel := context.WithTimeout(ctx, setupAttemptTimeout(attempt))
		defer cancel()
		err := once(actx)
		switch {
		case err == nil:
			if attempt > 1 {
				log.Info("NATS set up", "attempt", attempt)
			}
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		}
		if ferr := forbidden(); ferr != nil {
			return ferr
		}
		log.Warn("NATS unreachable or JetStream not ready; retrying", "attempt", attempt, "err", err)
		return retry.RetryableError(err)
	})
	if err != nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	return err
}
