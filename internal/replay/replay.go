// Package replay re-drives events through the ticketing engine: dead
// letters of FORMS_DLQ (`ticketer dlq replay`, the console) and ranges of
// FORMS (`ticketer replay`). The same engine, mapping, Jira client and
// idempotency records as the service: a replay never creates a second
// ticket unless forced.
package replay

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/deadletters"
	"github.com/cowjacket/formjira/internal/form"
	"github.com/cowjacket/formjira/internal/index"
	"github.com/cowjacket/formjira/internal/stats"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/ticketing"
)

// Replayer re-drives events. Build one per command (or console action),
// after invalidating the engine's field metadata, so a mapping or a Jira
// option fixed since the failure takes effect.
type Replayer struct {
	Engine    *ticketing.Engine
	JS        jetstream.JetStream
	Stats     *stats.Recorder // nil: not counted
	BatchSize int
	// Index, if set, is told every outcome (the request index's recorder,
	// so `ticketer trace` sees replays too).
	Index Observer

	// dlqByHash indexes FORMS_DLQ by hash (built on first need), so a
	// replay of FORMS that still fails replaces the request's dead letter
	// instead of adding a second one.
	dlqByHash map[string][]dlqEntry
	// dlqByOrig: the dead letters without a hash (undecodable), by the
	// event they hold ("FORMS:12").
	dlqByOrig map[string][]dlqEntry
	// forced are the requests a --force replay re-created: a later copy of
	// one (FORMS may hold a request twice) is not forced again.
	forced map[string]bool
}

// dlqEntry is a dead letter as the FORMS replay needs it: capture's are
// never replaced (their bodies may be cut), only removed once ticketed.
type dlqEntry struct {
	seq     uint64
	capture bool
}

// Observer is told each replayed event's outcome (*index.Recorder has it).
type Observer interface{ Observe([]index.Observation) }

func (r *Replayer) observe(hash string, seq uint64, out Outcome, via string) {
	if r.Index == nil {
		return
	}
	o := index.Observation{Hash: hash, Seq: seq, Status: out.Status.String(), Key: out.Key, Via: via, At: time.Now()}
	if out.DLQSeq != 0 && out.Status != ticketing.StatusCreated && out.Status != ticketing.StatusSkipped {
		// Still (or again) in FORMS_DLQ.
		o.Status, o.DLQSeq = ticketing.StatusDeadLettered.String(), out.DLQSeq
	}
	if out.Err != nil && out.Key == "" {
		o.Err = oneLine(out.Err)
	}
	r.Index.Observe([]index.Observation{o})
}

// Result counts what a replay did.
type Result struct {
	Replayed, Created, Skipped, Failing int
}

// Outcome is what became of one replayed event, in words (Line) and as data.
type Outcome struct {
	Label  string           // "DLQ 7 (hash 34d9791a…, Sara Curtis <…>)" or "FORMS 12 (…)"
	Status ticketing.Status // created, skipped, rejected, auth, retry
	Key    string           // the ticket, when there is one
	DLQSeq uint64           // the dead letter now holding the failure, if any
	Err    error
	Line   string // the outcome in one sentence
}

// ErrAuth: Jira refused the credentials; the replay stopped.
var ErrAuth = errors.New("Jira refuses the credentials")

func (r *Replayer) batch() int { return max(r.BatchSize, 1) }

// DeadLetters re-drives entries of FORMS_DLQ (st). A ticket (new or already
// recorded) removes the entry; a permanent failure replaces it with a dead
// letter carrying the new reason; a transient one leaves it as it is.
// capture's dead letters are never replayed (their values may be cut): the
// caller filters them out (deadletters.Entry.FromCapture).
func (r *Replayer) DeadLetters(ctx context.Context, st jetstream.Stream, entries []*deadletters.Entry) (Result, []Outcome, error) {
	var res Result
	var outs []Outcome
	for start := 0; start < len(entries); start += r.batch() {
		chunk := entries[start:min(start+r.batch(), len(entries))]
		items := make([]ticketing.Item, len(chunk))
		for i, e := range chunk {
			d := e.DeadLetter
			items[i] = ticketing.Item{Data: e.Data, Subject: d.OrigSubject, Stream: d.OrigStream, Seq: d.OrigSeq, Delivery: 1, NoDeadLetter: true}
		}
		results := r.Engine.Process(ctx, items)
		var authErr error
		for i, o := range results {
			e := chunk[i]
			out := Outcome{Label: fmt.Sprintf("DLQ %d (hash %s, %s)", e.Seq, deadletters.ShortHash(e.Hash), deadletters.Who(e.Name, e.Email)),
				Status: o.Status, Key: o.Key, Err: o.Err, DLQSeq: e.Seq}
			res.Replayed++
			switch {
			case repeatFailing(o):
				// The same request as an entry before it, which got no
				// ticket: this entry stays, as that one's does.
				res.Failing++
				out.Line = fmt.Sprintf("%s: the same request as an entry before it in this replay, which is still failing; entry kept", out.Label)
			case o.Status == ticketing.StatusCreated || o.Status == ticketing.StatusSkipped:
				if o.Status == ticketing.StatusCreated {
					res.Created++
					out.Line = fmt.Sprintf("%s: created %s", out.Label, o.Key)
				} else {
					res.Skipped++
					out.Line = fmt.Sprintf("%s: already ticketed %s, nothing created", out.Label, o.Key)
				}
				out.DLQSeq = 0
				if err := st.DeleteMsg(ctx, e.Seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
					out.DLQSeq = e.Seq
					out.Line += fmt.Sprintf("; could not be removed from %s: %v", stream.DLQ, err)
				}
			case o.Status == ticketing.StatusRejected:
				res.Failing++
				newSeq, err := deadletters.Replace(ctx, r.JS, st, e, *o.DeadLetter)
				why := deadletters.ReasonText(*o.DeadLetter)
				switch {
				case err == nil:
					out.DLQSeq = newSeq
					out.Line = fmt.Sprintf("%s: still failing, now DLQ %d: %s", out.Label, newSeq, why)
				case newSeq != 0:
					// Stored anew, the old one not removed: both are listed
					// (a replay of either finds the same request).
					out.DLQSeq = newSeq
					out.Line = fmt.Sprintf("%s: still failing, now DLQ %d; DLQ %d could not be removed (%v): %s", out.Label, newSeq, e.Seq, err, why)
				default:
					out.Line = fmt.Sprintf("%s: still failing, entry kept unchanged (%v): %s", out.Label, err, why)
				}
			case o.Status == ticketing.StatusAuth:
				res.Failing++
				authErr = o.Err
				out.Line = fmt.Sprintf("%s: Jira refuses the credentials; entry kept", out.Label)
			default: // StatusRetry (StatusDeadLettered cannot happen with NoDeadLetter)
				res.Failing++
				out.Line = fmt.Sprintf("%s: still failing (transient, entry kept; try again later): %v", out.Label, o.Err)
			}
			if !repeatFailing(o) { // the first copy's state stands
				r.observe(e.Hash, e.OrigSeq, out, "dlq replay")
			}
			outs = append(outs, out)
		}
		r.count(results)
		if authErr != nil {
			return res, outs, fmt.Errorf("%w: %w", ErrAuth, authErr)
		}
		if ctx.Err() != nil {
			return res, outs, ctx.Err()
		}
	}
	return res, outs, nil
}

// repeatFailing: o repeats a request earlier in the batch, which got no
// ticket; it is that one's outcome, reported once.
func repeatFailing(o ticketing.Outcome) bool { return o.Duplicate && o.Key == "" }

func (r *Replayer) count(outs []ticketing.Outcome) {
	var created, skipped int
	for _, o := range outs {
		switch {
		case o.Status == ticketing.StatusCreated:
			created++
		case o.Status == ticketing.StatusSkipped && !repeatFailing(o):
			skipped++
		}
	}
	r.Stats.Add(stats.Created, created)
	r.Stats.Add(stats.Skipped, skipped)
}

// Range is a part of FORMS to re-process: from FromSeq, or the events stored
// within Since, up to ToSeq (0: the stream's last).
type Range struct {
	FromSeq, ToSeq uint64
	Since          time.Duration
	// Force creates a ticket even when one is recorded (the record then
	// points at the new one).
	Force bool
}

// Forms re-processes rng of FORMS, reporting each outcome to report as it
// happens; first and last are the sequences re-processed (0 when none).
func (r *Replayer) Forms(ctx context.Context, rng Range, report func(Outcome)) (res Result, first, last uint64, err error) {
	forms, err := r.JS.Stream(ctx, stream.Forms)
	if err != nil {
		return res, 0, 0, fmt.Errorf("stream %s: %w", stream.Forms, err)
	}
	dlq, err := deadletters.Open(ctx, r.JS)
	if err != nil {
		return res, 0, 0, err
	}
	info, err := forms.Info(ctx)
	if err != nil {
		return res, 0, 0, fmt.Errorf("stream %s: %w", stream.Forms, err)
	}
	end := info.State.LastSeq
	if rng.ToSeq > 0 {
		end = min(end, rng.ToSeq)
	}
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: rng.FromSeq}
	if rng.Since > 0 {
		t := time.Now().Add(-rng.Since)
		cfg = jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &t}
	}
	for info.State.Msgs > 0 && (cfg.DeliverPolicy == jetstream.DeliverByStartTimePolicy || cfg.OptStartSeq <= end) {
		var items []ticketing.Item
		err := stream.ReadAll(ctx, forms, cfg, func(m jetstream.Msg) bool {
			md, err := m.Metadata()
			if err != nil {
				return true
			}
			if md.Sequence.Stream > end {
				return false
			}
			items = append(items, ticketing.Item{Data: m.Data(), Subject: m.Subject(), Stream: stream.Forms, Seq: md.Sequence.Stream,
				Delivery: 1, Force: rng.Force, NoDeadLetter: true})
			return len(items) < r.batch()
		})
		if err != nil {
			return res, first, last, fmt.Errorf("read %s: %w", stream.Forms, err)
		}
		if len(items) == 0 {
			break
		}
		if rng.Force {
			r.forceOnce(items)
		}
		if first == 0 {
			first = items[0].Seq
		}
		last = items[len(items)-1].Seq
		if err := r.forms(ctx, dlq, items, rng.Force, &res, report); err != nil {
			return res, first, last, err
		}
		cfg = jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: last + 1}
	}
	return res, first, last, nil
}

func (r *Replayer) forms(ctx context.Context, dlq jetstream.Stream, items []ticketing.Item, force bool, res *Result, report func(Outcome)) error {
	results := r.Engine.Process(ctx, items)
	var authErr error
	for i, o := range results {
		it := items[i]
		hash, name, email := "", "", ""
		if ev, err := stream.Unmarshal(it.Data); err == nil {
			hash, name, email = ev.GetHash(), form.String(ev, deadletters.NameColumn), form.String(ev, deadletters.EmailColumn)
		}
		out := Outcome{Label: fmt.Sprintf("%s %d (hash %s, %s)", stream.Forms, it.Seq, deadletters.ShortHash(hash), deadletters.Who(name, email)),
			Status: o.Status, Key: o.Key, Err: o.Err}
		res.Replayed++
		switch {
		case repeatFailing(o):
			// The same request earlier in this replay got no ticket: its
			// line says why, and its dead letter (if any) must stay.
			res.Failing++
			out.Line = fmt.Sprintf("%s: the same request as an event before it in this replay, which is still failing", out.Label)
		case o.Status == ticketing.StatusCreated:
			res.Created++
			note := ""
			if force {
				note = " (forced; the record now points at it)"
			}
			out.Line = fmt.Sprintf("%s: created %s%s%s", out.Label, o.Key, note, r.resolved(ctx, dlq, hash))
		case o.Status == ticketing.StatusSkipped:
			res.Skipped++
			out.Line = fmt.Sprintf("%s: skipped, already ticketed %s%s", out.Label, o.Key, r.resolved(ctx, dlq, hash))
		case o.Status == ticketing.StatusRejected:
			res.Failing++
			seq, err := r.deadLetter(ctx, dlq, hash, it, o.DeadLetter)
			where := fmt.Sprintf("dead-lettered as DLQ %d", seq)
			if err != nil {
				where = "not dead-lettered: " + err.Error()
			}
			out.DLQSeq = seq
			out.Line = fmt.Sprintf("%s: failed, %s: %s", out.Label, where, deadletters.ReasonText(*o.DeadLetter))
		case o.Status == ticketing.StatusAuth:
			res.Failing++
			authErr = o.Err
			out.Line = fmt.Sprintf("%s: Jira refuses the credentials", out.Label)
		default:
			res.Failing++
			out.Line = fmt.Sprintf("%s: still failing (transient; run the replay again later): %s", out.Label, oneLine(o.Err))
		}
		if !repeatFailing(o) {
			r.observe(hash, it.Seq, out, "replay")
		}
		report(out)
	}
	r.count(results)
	if authErr != nil {
		return fmt.Errorf("%w: %w", ErrAuth, authErr)
	}
	return ctx.Err()
}

// forceOnce forces each request once per replay: a copy of one already
// forced in an earlier batch would make a ticket more (within a batch the
// engine sees the copies as one request).
func (r *Replayer) forceOnce(items []ticketing.Item) {
	if r.forced == nil {
		r.forced = map[string]bool{}
	}
	for i := range items {
		ev, err := stream.Unmarshal(items[i].Data)
		if err != nil || ev.GetHash() == "" {
			continue
		}
		h := ev.GetHash()
		items[i].Force = !r.forced[h]
		r.forced[h] = true
	}
}

// byHash loads, once per replay, the dead letters of FORMS_DLQ by hash.
func (r *Replayer) byHash(ctx context.Context, st jetstream.Stream) error {
	if r.dlqByHash != nil {
		return nil
	}
	entries, err := deadletters.List(ctx, st)
	if err != nil {
		return err
	}
	r.dlqByHash, r.dlqByOrig = map[string][]dlqEntry{}, map[string][]dlqEntry{}
	for _, e := range entries {
		de := dlqEntry{e.Seq, e.FromCapture()}
		if e.Hash != "" {
			r.dlqByHash[e.Hash] = append(r.dlqByHash[e.Hash], de)
		} else {
			k := origKey(e.DeadLetter.OrigStream, e.DeadLetter.OrigSeq)
			r.dlqByOrig[k] = append(r.dlqByOrig[k], de)
		}
	}
	return nil
}

func origKey(stream string, seq uint64) string { return stream + ":" + strconv.FormatUint(seq, 10) }

// resolved removes the dead letters of a request a FORMS replay ticketed
// (or found ticketed): they are no longer waiting for anyone. It says what
// it did, for the outcome's line.
func (r *Replayer) resolved(ctx context.Context, st jetstream.Stream, hash string) string {
	if hash == "" || r.byHash(ctx, st) != nil {
		return ""
	}
	var gone []string
	for _, e := range r.dlqByHash[hash] {
		if err := st.DeleteMsg(ctx, e.seq); err == nil || errors.Is(err, jetstream.ErrMsgNotFound) {
			gone = append(gone, fmt.Sprint(e.seq))
		}
	}
	delete(r.dlqByHash, hash)
	if len(gone) == 0 {
		return ""
	}
	return fmt.Sprintf("; its dead letter(s) DLQ %s removed", strings.Join(gone, ", "))
}

// deadLetter records a FORMS event that a replay could not ticket: a new
// dead letter of this event (its body, its stream and sequence), carrying
// the attempts and first failure of the request's earlier one, which it
// then replaces; nothing is removed before the new one is stored, and the
// new one never. capture's dead letters of the request stay (not
// replayable); an event without a hash matches none.
func (r *Replayer) deadLetter(ctx context.Context, st jetstream.Stream, hash string, it ticketing.Item, dl *stream.DeadLetter) (uint64, error) {
	if err := r.byHash(ctx, st); err != nil {
		return 0, err
	}
	index, key := r.dlqByHash, hash
	if hash == "" { // no request to match: the event itself
		index, key = r.dlqByOrig, origKey(it.Stream, it.Seq)
	}
	var olds, kept []dlqEntry
	for _, e := range index[key] {
		if e.capture {
			kept = append(kept, e)
		} else {
			olds = append(olds, e)
		}
	}
	d, from := *dl, uint64(0)
	if len(olds) > 0 {
		if old, err := deadletters.Get(ctx, st, olds[0].seq); err == nil && old != nil {
			deadletters.Carry(&d, old.DeadLetter)
			from = old.Seq
		}
	}
	m := d.Msg(stream.DLQTicketer, it.Data)
	if from != 0 {
		m.Header.Set(stream.HeaderReplayedFrom, strconv.FormatUint(from, 10))
	}
	// Its own id: a copy of an earlier entry's would collapse into it.
	m.Header.Set(nats.MsgIdHdr, fmt.Sprintf("dlq:replay:%s:%d:%d", it.Stream, it.Seq, time.Now().UnixNano()))
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	ack, err := r.JS.PublishMsg(pctx, m)
	if err != nil {
		return 0, fmt.Errorf("publish dead letter: %w", err)
	}
	for _, e := range olds {
		if e.seq != ack.Sequence {
			_ = st.DeleteMsg(pctx, e.seq)
		}
	}
	if len(olds) == 0 {
		r.Stats.Add(stats.DeadLettered, 1) // a new one; a replaced one was counted when first made
	}
	index[key] = append(kept, dlqEntry{seq: ack.Sequence})
	return ack.Sequence, nil
}

func oneLine(err error) string {
	if err == nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(err.Error()), " ")
}
