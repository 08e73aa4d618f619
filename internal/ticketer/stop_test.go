package ticketer

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"
)

// The design's promise: an exit within 10 s of SIGTERM, whatever is still
// busy.
func TestWaitBounded(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name     string
		wait     func() error
		want     error
		atLeast  time.Duration
		atMost   time.Duration
		signaled bool
	}{
		{"done before the signal", func() error { return boom }, boom, 0, 100 * time.Millisecond, false},
		{"done within the limit", func() error { time.Sleep(50 * time.Millisecond); return boom }, boom, 50 * time.Millisecond, 150 * time.Millisecond, true},
		{"stuck", func() error { select {} }, nil, 200 * time.Millisecond, 400 * time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.signaled {
				cancel()
			}
			start := time.Now()
			err := waitBounded(ctx, tc.wait, 200*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
			took := time.Since(start)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Errorf("err %v, want %v", err, tc.want)
			}
			if took < tc.atLeast || took > tc.atMost {
				t.Errorf("returned after %v, want %v..%v", took, tc.atLeast, tc.atMost)
			}
		})
	}
}
