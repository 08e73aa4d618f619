package trace_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/form"
	"github.com/cowjacket/formjira/internal/index"
	"github.com/cowjacket/formjira/internal/localnats"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/ticketer/ticketertest"
	"github.com/cowjacket/formjira/internal/trace"
)

// world is an empty FORMS, FORMS_DLQ and FORMS_INDEX on a nats-server.
func world(tb testing.TB, opts ...jetstream.JetStreamOpt) (jetstream.JetStream, *index.Index) {
	tb.Helper()
	ns := localnats.StartTB(tb)
	nc := ns.ConnectTB(tb)
	js, _ := jetstream.New(nc, opts...)
	ctx := context.Background()
	if err := stream.EnsureAll(ctx, js, stream.Config{}); err != nil {
		tb.Fatal(err)
	}
	kv, err := stream.EnsureIndex(ctx, js, stream.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	return js, &index.Index{KV: kv, JS: js}
}

// TestCommonFirstName: with more Johns than one word may list, "John
// Smith" still names the one request; a query of common words only is
// still too broad.
func TestCommonFirstName(t *testing.T) {
	js, idx := world(t)
	ctx := context.Background()
	samples, _ := form.Samples()
	kvs := map[string][]byte{}
	for i := range index.MaxMatches + 100 {
		sum := sha256.Sum256(fmt.Appendf(nil, "john %d", i))
		last := fmt.Sprintf("Family%d", i)
		if i == 7 {
			last = "Smith"
		}
		cols := form.WithValue(form.WithValue(samples[0].Columns(), "emailaddress", form.Text(fmt.Sprintf("u%d@example.com", i))),
			"newusername", form.Text("John "+last))
		ev := ticketertest.RowEvent(cols, int64(100+i))
		ev.Hash = hex.EncodeToString(sum[:])
		for k, v := range index.Postings(uint64(1+i), ticketertest.FormSubject, time.Now(), ev) {
			kvs[k] = v
		}
	}
	if err := idx.Put(ctx, kvs); err != nil {
		t.Fatal(err)
	}
	tr := &trace.Tracer{JS: js, Index: &index.Index{KV: idx.KV}}
	for _, q := range []string{"John Smith", "Smith John"} {
		if res, err := tr.Find(ctx, q); err != nil || res.Matches != 1 {
			t.Errorf("%q: %+v, %v; want the one John Smith", q, res, err)
		}
	}
	if _, err := tr.Find(ctx, "John"); err == nil || !strings.Contains(err.Error(), "too many") {
		t.Errorf("John alone: %v; want too broad", err)
	}
}

// TestCaptureDeadLetterIsNamed: a row capture dead-lettered never reached
// FORMS, so the index has nothing; trace names its dead letter (by hash,
// e-mail, id or name) instead of "not captured".
func TestCaptureDeadLetterIsNamed(t *testing.T) {
	js, idx := world(t)
	ctx := context.Background()
	samples, _ := form.Samples()
	ev := ticketertest.RowEvent(samples[0].Columns(), 1)
	body, err := stream.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	m := stream.DeadLetter{Reason: stream.ReasonTooLarge, Error: "event of 2 MiB over max_payload", Attempts: 1, Hash: ev.GetHash(),
		FirstFailure: now, LastFailure: now, DeadLetteredBy: "capture"}.Msg(stream.DLQCapture, body)
	ack, err := js.PublishMsg(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	tr := &trace.Tracer{JS: js, Index: &index.Index{KV: idx.KV}}
	for _, q := range []string{ev.GetHash(), ev.GetHash()[:8], "sara.curtis@example.com", "id=1", "Sara Curtis"} {
		res, err := tr.Find(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if nc := res.NotCaptured; nc == nil || len(nc.CaptureDeadLetters) != 1 || nc.CaptureDeadLetters[0] != ack.Sequence ||
			!strings.Contains(nc.Note, "capture dead-lettered it") || !strings.Contains(nc.Note, "too_large") {
			t.Errorf("%s: %+v; want its capture dead letter DLQ %d named", q, res.NotCaptured, ack.Sequence)
		}
	}
	if res, err := tr.Find(ctx, "nobody@example.com"); err != nil || res.NotCaptured == nil || len(res.NotCaptured.CaptureDeadLetters) != 0 ||
		!strings.Contains(res.NotCaptured.Note, "not captured") {
		t.Errorf("another e-mail: %+v, %v; want not captured", res, err)
	}
}

// TestUnknownJiraKeyIsNotNotCaptured: a Jira key the index does not hold
// (made before the index existed, or not ours) is said so, and the note
// points to the e-mail or name, not to capture.
func TestUnknownJiraKeyIsNotNotCaptured(t *testing.T) {
	js, idx := world(t)
	tr := &trace.Tracer{JS: js, Index: &index.Index{KV: idx.KV}}
	res, err := tr.Find(context.Background(), "CP-42")
	if err != nil {
		t.Fatal(err)
	}
	if nc := res.NotCaptured; nc == nil || !strings.Contains(nc.Note, "no request in the index has ticket CP-42") || strings.Contains(nc.Note, "not captured") {
		t.Errorf("CP-42: %+v", res.NotCaptured)
	}
}
