package stream

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestReadAll: every message up to the last at the call, in order, over
// several batches, without waiting out a fetch's MaxWait on the short last
// batch; fn returning false ends it.
func TestReadAll(t *testing.T) {
	js := connect(t)
	ctx := context.Background()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "R", Subjects: []string{"r.>"}})
	if err != nil {
		t.Fatal(err)
	}
	const n = 1203
	for i := range n {
		if _, err := js.Publish(ctx, fmt.Sprintf("r.%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	all := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	start := time.Now()
	var seqs []uint64
	if err := ReadAll(ctx, st, all, func(m jetstream.Msg) bool {
		md, _ := m.Metadata()
		seqs = append(seqs, md.Sequence.Stream)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 900*time.Millisecond {
		t.Errorf("reading %d messages took %v: a batch waited out its MaxWait", n, took)
	}
	if len(seqs) != n || seqs[0] != 1 || seqs[n-1] != n {
		t.Fatalf("read %d messages (%v…), want 1..%d", len(seqs), seqs[:min(3, len(seqs))], n)
	}
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("message %d has sequence %d", i, s)
		}
	}
	got := 0
	if err := ReadAll(ctx, st, all, func(jetstream.Msg) bool { got++; return got < 10 }); err != nil || got != 10 {
		t.Errorf("stopping at 10: %d read, %v", got, err)
	}
}
