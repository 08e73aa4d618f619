package index

import (
	"log/slog"
	"testing"
)

// Observe never blocks: a full queue drops the observations and says how
// many (ticketer_index_dropped_total).
func TestObserveDropsWhenFullAndTells(t *testing.T) {
	r := NewRecorder(&Index{}, slog.New(slog.DiscardHandler), 1)
	dropped := 0
	r.OnDrop = func(n int) { dropped += n }
	r.Observe([]Observation{{}, {}}) // queued
	r.Observe([]Observation{{}, {}, {}})
	if dropped != 3 {
		t.Errorf("dropped %d, want 3", dropped)
	}
	var nilRec *Recorder
	nilRec.Observe([]Observation{{}}) // records nothing, never panics
}
