// Package pause waits for a while unless a context ends first: the
// retry loops' one way to back off.
package pause

import (
	"context"
	"time"
)

// For waits d; false if ctx ended first (or had already).
func For(ctx context.Context, d time.Duration) bool { return Or(ctx, d, nil) }

// Or is For that also gives up when stop is closed (a nil stop never is).
func Or(ctx context.Context, d time.Duration, stop <-chan struct{}) bool {
	if ctx.Err() != nil {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-stop:
		return false
	}
}
