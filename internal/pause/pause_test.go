package pause

import (
	"context"
	"testing"
	"time"
)

func TestFor(t *testing.T) {
	start := time.Now()
	if !For(context.Background(), 20*time.Millisecond) || time.Since(start) < 20*time.Millisecond {
		t.Errorf("For(20ms) returned false or early, after %v", time.Since(start))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	start = time.Now()
	if For(ctx, time.Hour) || time.Since(start) > 5*time.Second {
		t.Errorf("For(1h) under a 10ms context: true or slow (%v)", time.Since(start))
	}
	if For(ctx, 0) {
		t.Error("For(0) under an ended context returned true")
	}
}

func TestOr(t *testing.T) {
	stop := make(chan struct{})
	close(stop)
	start := time.Now()
	if Or(context.Background(), time.Hour, stop) || time.Since(start) > 5*time.Second {
		t.Errorf("Or(1h) with stop closed: true or slow (%v)", time.Since(start))
	}
	if !Or(context.Background(), time.Millisecond, make(chan struct{})) {
		t.Error("Or(1ms) with stop open returned false")
	}
}
