package jira

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestPacerLowPriorityYields: at 20 requests/s, while normal callers keep
// arriving, a low-priority caller gets no token; it gets one as soon as
// they are done, and it never delays them.
func TestPacerLowPriorityYields(t *testing.T) {
	p := NewPacer(20) // burst 4
	ctx := context.Background()
	const normals = 10
	var mu sync.Mutex
	var normalDone []time.Time
	var lowAt time.Time
	var wg sync.WaitGroup
	start := time.Now()
	for range normals {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.Wait(ctx); err != nil {
				t.Error(err)
			}
			mu.Lock()
			normalDone = append(normalDone, time.Now())
			mu.Unlock()
		}()
	}
	time.Sleep(5 * time.Millisecond) // the normal callers are queued
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := p.WaitLow(ctx); err != nil {
			t.Error(err)
		}
		mu.Lock()
		lowAt = time.Now()
		mu.Unlock()
	}()
	wg.Wait()
	last := normalDone[0]
	for _, d := range normalDone {
		if d.After(last) {
			last = d
		}
	}
	if lowAt.Before(last) {
		t.Errorf("low-priority request went at %v, before the last normal one at %v", lowAt.Sub(start), last.Sub(start))
	}
	// 10 requests at 20/s with a burst of 4: the last is due at ≈ 300 ms;
	// a stolen token would push it to ≈ 350 ms.
	if d := last.Sub(start); d > 340*time.Millisecond {
		t.Errorf("normal requests took %v, want ≈ 300ms (a low-priority request took a token)", d)
	}
	// The low one follows within about one token interval.
	if d := lowAt.Sub(last); d > 150*time.Millisecond {
		t.Errorf("low-priority request %v after the last normal one, want ≤ one token interval", d)
	}
}

func TestPacerLowPriorityHonoursRetryAfter(t *testing.T) {
	p := NewPacer(0)
	p.Throttled(200 * time.Millisecond)
	start := time.Now()
	if err := p.WaitLow(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 190*time.Millisecond {
		t.Errorf("waited %v, want ≥ 200ms", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	p.Throttled(time.Second)
	if err := p.WaitLow(ctx); err == nil {
		t.Error("WaitLow returned before Retry-After elapsed")
	}
}
