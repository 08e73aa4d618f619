package main

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/jirasandbox"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/ticketer/ticketertest"
)

// publishRaw stores m in JetStream as is.
func (h *harness) publishRaw(m *nats.Msg) {
	h.T.Helper()
	if _, err := h.JS.PublishMsg(context.Background(), m); err != nil {
		h.T.Fatal(err)
	}
}

// deadLettered is a stopped service that dead-lettered one event (a
// department Jira does not offer).
func deadLettered(t *testing.T) *harness {
	t.Helper()
	h := newHarness(t, jirasandbox.Options{})
	h.Publish(ticketertest.BadDepartment(t))
	stop := h.Start()
	h.WaitFor("the dead letter", 20*time.Second, func() bool { return len(h.DLQ()) == 1 && h.Pending() == 0 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestFormsReplayKeepsEveryDeadLetter: a FORMS replay of events that still
// fail leaves each with exactly one dead letter of its own, whatever
// FORMS_DLQ held before: both halves of a Replace a crash interrupted (the
// replay once deleted the entry it had just stored), and the dead letters
// of two events without a hash (once merged into one).
func TestFormsReplayKeepsEveryDeadLetter(t *testing.T) {
	t.Run("after an interrupted replace", func(t *testing.T) {
		h := deadLettered(t)
		// What Replace publishes before it deletes the old entry.
		o := h.DLQ()[0]
		m := &nats.Msg{Subject: o.Subject, Header: nats.Header(o.Header), Data: o.Data}
		m.Header.Set(nats.MsgIdHdr, "dlq:replaced:"+strconv.FormatUint(o.Sequence, 10))
		h.publishRaw(m)
		if _, err := h.cmd("replay", "--from-seq", "1"); err == nil {
			t.Error("a replay of a still failing event succeeded")
		}
		if dl := h.DLQ(); len(dl) != 1 || dl[0].Sequence <= 2 {
			t.Errorf("%d dead letters after the replay (want the one it stored)", len(dl))
		}
	})
	t.Run("events without a hash", func(t *testing.T) {
		h := newHarness(t, jirasandbox.Options{})
		for _, body := range []string{"not json one", "not json two"} {
			h.publishRaw(&nats.Msg{Subject: ticketertest.FormSubject, Data: []byte(body), Header: nats.Header{nats.MsgIdHdr: {body}}})
		}
		stop := h.Start()
		h.WaitFor("two dead letters", 20*time.Second, func() bool { return len(h.DLQ()) == 2 && h.Pending() == 0 })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if out, err := h.cmd("replay", "--from-seq", "1"); err == nil || !strings.Contains(out, "2 still failing") {
			t.Fatalf("replay of two undecodable events: %v\n%s", err, out)
		}
		seen := map[uint64]bool{}
		for _, m := range h.DLQ() {
			seen[stream.ParseDeadLetter(nats.Header(m.Header)).OrigSeq] = true
		}
		if !seen[1] || !seen[2] || len(h.DLQ()) != 2 {
			t.Errorf("dead letters of FORMS seqs %v after the replay, want one each of 1 and 2", seen)
		}
	})
}

// TestFormsReplayLeavesCaptureDeadLetters: a request capture dead-lettered
// (its values cut) and later backfilled into FORMS, still failing there: a
// FORMS replay adds a dead letter with the FORMS event and leaves capture's
// alone; it once rewrote capture's as ticketer's, cut body included, and a
// later dlq replay made a ticket of the cut values.
func TestFormsReplayLeavesCaptureDeadLetters(t *testing.T) {
	h := newHarness(t, jirasandbox.Options{})
	bad := ticketertest.BadDepartment(t)
	cut := stream.DeadLetter{Reason: stream.ReasonTooLarge, Error: "too large", Hash: bad.GetHash(), DeadLetteredBy: "capture", Attempts: 1}
	h.publishRaw(cut.Msg(stream.DLQCapture, []byte(`{"hash":"`+bad.GetHash()+`","columns":[]}`)))
	h.Publish(bad)
	if out, err := h.cmd("replay", "--from-seq", "1"); err == nil || !strings.Contains(out, "1 still failing") {
		t.Fatalf("replay of the still failing request: %v\n%s", err, out)
	}
	var capture, ticketer int
	for _, m := range h.DLQ() {
		switch m.Subject {
		case stream.DLQCapture:
			capture++
		case stream.DLQTicketer:
			ticketer++
			if ev, err := stream.Unmarshal(m.Data); err != nil || ev.GetHash() != bad.GetHash() || len(ev.GetColumns()) == 0 {
				t.Errorf("ticketer's dead letter does not carry the FORMS event (%v)", err)
			}
		}
	}
	if capture != 1 || ticketer != 1 {
		t.Errorf("%d capture and %d ticketer dead letters, want 1 each", capture, ticketer)
	}
}

// TestForcedReplayForcesARequestOnce: FORMS holding a request twice (a
// backfill after the duplicate window), a --force replay re-creates its
// ticket once, not once per copy, whether the copies fall in one batch or
// two.
func TestForcedReplayForcesARequestOnce(t *testing.T) {
	for _, batch := range []string{"1", "50"} { // the copies in two batches, in one
		t.Run("batch "+batch, func(t *testing.T) { forcedOnce(t, batch) })
	}
}

func forcedOnce(t *testing.T, batch string) {
	h := newHarness(t, jirasandbox.Options{})
	ev := ticketertest.SampleEvents(t)[0]
	h.Publish(ev)
	m, err := stream.NewMsg(ticketertest.FormSubject, ev)
	if err != nil {
		t.Fatal(err)
	}
	m.Header.Set(nats.MsgIdHdr, "published-again-after-the-window")
	h.publishRaw(m)
	stop := h.Start()
	h.WaitFor("the ticket", 20*time.Second, func() bool { return len(h.SB.Issues()) == 1 && h.Pending() == 0 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	h.Env["BATCH_SIZE"] = batch
	h.mustCmd("replay", "--from-seq", "1", "--force")
	if n := len(h.SB.Issues()); n != 2 {
		t.Errorf("%d tickets after a forced replay of one request held twice, want 2 (the first and the forced one)", n)
	}
}

// TestFormsReplayKeepsTheOldDeadLetterWhenTheNewOneFails: a FORMS replay of
// a still failing event whose new dead letter FORMS_DLQ refuses (full, and
// discarding new messages) says so and leaves the earlier dead letter in
// place: the request is never left without one.
func TestFormsReplayKeepsTheOldDeadLetterWhenTheNewOneFails(t *testing.T) {
	h := deadLettered(t)
	old := h.DLQ()[0].Sequence
	ctx := context.Background()
	st, err := h.JS.Stream(ctx, stream.DLQ)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	cfg.MaxMsgs, cfg.Discard = 1, jetstream.DiscardNew
	if _, err := h.JS.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	out, err := h.cmd("replay", "--from-seq", "1")
	if err == nil || !strings.Contains(out, "not dead-lettered") {
		t.Errorf("replay whose dead letter was refused: %v\n%s", err, out)
	}
	if dl := h.DLQ(); len(dl) != 1 || dl[0].Sequence != old {
		t.Errorf("dead letters after the replay: %d (want the old one, DLQ %d, kept)", len(dl), old)
	}
}
