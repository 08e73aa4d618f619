package trace_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/form"
	"github.com/cowjacket/formjira/internal/index"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/ticketer/ticketertest"
	"github.com/cowjacket/formjira/internal/trace"
	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

// bigIndex is FORMS_INDEX holding 100,000 synthetic requests (the shape
// the tailer writes: entry, e-mail, two name words, row id) and Sara
// Curtis, whose event is in FORMS and indexed by the tailer.
func bigIndex(tb testing.TB, n int) (*trace.Tracer, *formsv1.FormSubmission) {
	tb.Helper()
	js, idx := world(tb, jetstream.WithPublishAsyncMaxPending(4096))
	kv := idx.KV
	ctx := context.Background()
	start := time.Now()
	kvs := map[string][]byte{}
	samples, err := form.Samples()
	if err != nil {
		tb.Fatal(err)
	}
	for i := range n {
		sum := sha256.Sum256(fmt.Appendf(nil, "synthetic %d", i))
		s := samples[i%len(samples)]
		cols := form.WithValue(form.WithValue(s.Columns(), "emailaddress", form.Text(fmt.Sprintf("user%d@example.com", i))),
			"newusername", form.Text(fmt.Sprintf("Person%d Family%d", i, i%5000)))
		ev := ticketertest.RowEvent(cols, int64(1000+i))
		ev.Hash = hex.EncodeToString(sum[:])
		for k, v := range index.Postings(uint64(1_000_000+i), ticketertest.FormSubject, time.Now(), ev) {
			kvs[k] = v
		}
		if len(kvs) >= 4000 || i == n-1 {
			if err := idx.Put(ctx, kvs); err != nil {
				tb.Fatal(err)
			}
			clear(kvs)
		}
	}
	sara := ticketertest.RowEvent(samples[0].Columns(), 1)
	m, err := stream.NewMsg(ticketertest.FormSubject, sara)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := js.PublishMsg(ctx, m); err != nil {
		tb.Fatal(err)
	}
	forms, _ := js.Stream(ctx, stream.Forms)
	if k, err := (&index.Tailer{Index: idx, Forms: forms}).Step(ctx); err != nil || k != 1 {
		tb.Fatalf("tailer: %d indexed, %v", k, err)
	}
	tb.Logf("index of %d requests built in %s", n, time.Since(start).Round(time.Millisecond))
	return &trace.Tracer{JS: js, Index: &index.Index{KV: kv}}, sara
}

// The claim: with 100,000 events, trace answers in under a second,
// by every kind of query (10,000 under the race detector, see raceEnabled).
func TestTraceAnswersInUnderASecondWith100kRequests(t *testing.T) {
	if testing.Short() {
		t.Skip("builds an index of 100,000 requests on a nats-server")
	}
	n := 100_000
	if raceEnabled {
		n = 10_000
	}
	tr, sara := bigIndex(t, n)
	for _, q := range []string{sara.GetHash(), sara.GetHash()[:8], "sara.curtis@example.com", "Sara Curtis", "id=1", "user4242@example.com", "Family17 Person17", "id=9999"} {
		start := time.Now()
		res, err := tr.Find(context.Background(), q)
		took := time.Since(start)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if res.Matches != 1 || len(res.Journeys) != 1 {
			t.Errorf("%s: %d matches", q, res.Matches)
		}
		if took > time.Second {
			t.Errorf("%s took %s, more than a second", q, took)
		}
		t.Logf("%-64s %s", q, took.Round(time.Microsecond))
	}
}

func BenchmarkTrace100k(b *testing.B) {
	tr, _ := bigIndex(b, 100_000)
	for _, q := range []string{"sara.curtis@example.com", "Sara Curtis", "id=1", "34d9791a"} {
		b.Run(q, func(b *testing.B) {
			for b.Loop() {
				if _, err := tr.Find(context.Background(), q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
