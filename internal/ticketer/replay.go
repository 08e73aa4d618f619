package ticketer

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/form"
	"github.com/cowjacket/formjira/internal/jira"
	"github.com/cowjacket/formjira/internal/stream"
)

// replayer re-drives events through the service's Processor (same
// mapping, Jira client, idempotency records and rules). Every replay
// command builds a new one, so Jira's field metadata is fetched afresh: a
// mapping or a Jira option fixed since the failure takes effect.
type replayer struct {
	env   *Env
	out   io.Writer
	nc    *nats.Conn
	js    jetstream.JetStream
	proc  *Processor
	stats *statsRecorder

	// dlqByHash indexes FORMS_DLQ by hash (built on first need), so a
	// replay of FORMS that still fails replaces the request's dead letter
	// instead of adding a second one.
	dlqByHash map[string][]uint64
}

// ReplayResult counts what a replay did.
type ReplayResult struct {
	Replayed, Created, Skipped, Failing int
}

func newReplayer(ctx context.Context, env *Env) (*replayer, error) {
	if err := env.Config.RequireJira(); err != nil {
		return nil, err
	}
	m, err := env.Mapping()
	if err != nil {
		return nil, err
	}
	jc, err := env.Jira(m, nil, nil)
	if err != nil {
		return nil, err
	}
	nc, js, err := env.Connect(ctx, nats.MaxReconnects(5))
	if err != nil {
		return nil, err
	}
	proc, err := env.NewProcessor(ctx, js, m, jc, nil, nil)
	if err != nil {
		nc.Close()
		return nil, err
	}
	// A fresh look at Jira, now: fails early (and clearly) on bad
	// credentials, and no createmeta older than this command is used.
	proc.invalidateMeta()
	if _, err := proc.Meta(ctx); err != nil {
		nc.Close()
		if errors.Is(err, jira.ErrAuth) {
			return nil, fmt.Errorf("Jira refuses the credentials (JIRA_EMAIL/JIRA_API_TOKEN or JIRA_PAT): %w", err)
		}
		return nil, err
	}
	r := &replayer{env: env, out: env.Stdout, nc: nc, js: js, proc: proc}
	if _, err := ensureStats(ctx, js, env.StreamConfig()); err == nil {
		r.stats = newStatsRecorder(js, env.Log)
	} else {
		env.Log.Warn("daily counters unavailable; replay not counted in stats", "err", err)
	}
	return r, nil
}

func (r *replayer) close() {
	fctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := r.stats.flush(fctx); err != nil {
		r.env.Log.Warn("replay counts not added to the daily counters", "err", err)
	}
	r.nc.Close()
}

func (r *replayer) batchSize() int { return max(r.env.Config.BatchSize, 1) }

// replayDeadLetters re-drives entries (NoDeadLetter: failures come back
// as outcomes). A ticket (new or already recorded) removes the entry; a
// permanent failure replaces it with a dead letter carrying the new
// reason; a transient one leaves it as it is.
func (r *replayer) replayDeadLetters(ctx context.Context, st jetstream.Stream, entries []*DeadLetterEntry) (ReplayResult, error) {
	var res ReplayResult
	for start := 0; start < len(entries); start += r.batchSize() {
		chunk := entries[start:min(start+r.batchSize(), len(entries))]
		items := make([]Item, len(chunk))
		for i, e := range chunk {
			items[i] = Item{Data: e.data, Subject: e.dl.OrigSubject, Stream: e.dl.OrigStream, Seq: e.dl.OrigSeq, Delivery: 1, NoDeadLetter: true}
		}
		outs := r.proc.Process(ctx, items)
		var authErr error
		for i, o := range outs {
			e := chunk[i]
			label := fmt.Sprintf("DLQ %d (hash %s, %s)", e.Seq, shortHash(e.Hash), who(e.Name, e.Email))
			res.Replayed++
			switch o.Status {
			case StatusCreated, StatusSkipped:
				if o.Status == StatusCreated {
					res.Created++
					fmt.Fprintf(r.out, "%s: created %s\n", label, o.Key)
				} else {
					res.Skipped++
					fmt.Fprintf(r.out, "%s: already ticketed %s, nothing created\n", label, cmpOr(o.Key, "(same request earlier in this replay)"))
				}
				if err := st.DeleteMsg(ctx, e.Seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
					fmt.Fprintf(r.out, "%s: has its ticket, but could not be removed from %s: %v\n", label, stream.DLQ, err)
				}
			case StatusRejected:
				res.Failing++
				newSeq, err := r.replaceDeadLetter(ctx, st, e, o.DeadLetter)
				if err != nil {
					fmt.Fprintf(r.out, "%s: still failing, entry kept unchanged (%v): %s\n", label, err, reasonText(*o.DeadLetter))
					continue
				}
				fmt.Fprintf(r.out, "%s: still failing, now DLQ %d: %s\n", label, newSeq, reasonText(*o.DeadLetter))
			case StatusAuth:
				res.Failing++
				authErr = o.Err
				fmt.Fprintf(r.out, "%s: Jira refuses the credentials; entry kept\n", label)
			default: // StatusRetry (StatusDeadLettered cannot happen with NoDeadLetter)
				res.Failing++
				fmt.Fprintf(r.out, "%s: still failing (transient, entry kept; try again later): %v\n", label, o.Err)
			}
		}
		r.count(outs)
		if authErr != nil {
			return res, fmt.Errorf("Jira refuses the credentials: %w", authErr)
		}
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
	}
	return res, nil
}

func (r *replayer) count(outs []Outcome) {
	var created, skipped int
	for _, o := range outs {
		switch o.Status {
		case StatusCreated:
			created++
		case StatusSkipped:
			skipped++
		}
	}
	r.stats.add(statCreated, created)
	r.stats.add(statSkipped, skipped)
}

// replaceDeadLetter publishes dl (the replay's failure) in place of old
// and then deletes old, so `dlq list` shows the new reason. The publish's
// Nats-Msg-Id names old, so a retried replace (a crash between publish and
// delete) collapses into one entry.
func (r *replayer) replaceDeadLetter(ctx context.Context, st jetstream.Stream, old *DeadLetterEntry, dl *stream.DeadLetter) (uint64, error) {
	d := *dl
	d.Attempts = max(old.dl.Attempts, 0) + 1
	if !old.dl.FirstFailure.IsZero() {
		d.FirstFailure = old.dl.FirstFailure
	}
	d.OrigStream, d.OrigSeq, d.OrigSubject = old.dl.OrigStream, old.dl.OrigSeq, old.dl.OrigSubject
	d.DeadLetteredBy = "ticketer"
	m := d.Msg(stream.DLQTicketer, old.data)
	m.Header.Set(nats.MsgIdHdr, "dlq:replaced:"+strconv.FormatUint(old.Seq, 10))
	m.Header.Set(HeaderReplayedFrom, strconv.FormatUint(old.Seq, 10))
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	ack, err := r.js.PublishMsg(pctx, m)
	if err != nil {
		return 0, fmt.Errorf("publish the updated dead letter: %w", err)
	}
	if err := st.DeleteMsg(pctx, old.Seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return ack.Sequence, fmt.Errorf("remove the old dead letter: %w", err)
	}
	return ack.Sequence, nil
}

// deadLetterFromReplay records a FORMS event that a replay could not
// ticket: it replaces the request's existing dead letter(s), or adds one.
func (r *replayer) deadLetterFromReplay(ctx context.Context, st jetstream.Stream, hash string, it Item, dl *stream.DeadLetter) (uint64, error) {
	if r.dlqByHash == nil {
		r.dlqByHash = map[string][]uint64{}
		entries, err := listDeadLetters(ctx, st)
		if err != nil {
			return 0, err
		}
		for _, e := range entries {
			r.dlqByHash[e.Hash] = append(r.dlqByHash[e.Hash], e.Seq)
		}
	}
	var newSeq uint64
	olds := r.dlqByHash[hash]
	if len(olds) > 0 {
		old, err := getDeadLetter(ctx, st, olds[0])
		if err != nil {
			return 0, err
		}
		if old != nil {
			if newSeq, err = r.replaceDeadLetter(ctx, st, old, dl); err != nil {
				return 0, err
			}
			for _, seq := range olds[1:] {
				_ = st.DeleteMsg(ctx, seq)
			}
		}
	}
	if newSeq == 0 {
		m := dl.Msg(stream.DLQTicketer, it.Data)
		m.Header.Set(nats.MsgIdHdr, fmt.Sprintf("dlq:replay:%s:%d:%d", it.Stream, it.Seq, time.Now().UnixNano()))
		ack, err := r.js.PublishMsg(ctx, m)
		if err != nil {
			return 0, fmt.Errorf("publish dead letter: %w", err)
		}
		newSeq = ack.Sequence
	}
	r.dlqByHash[hash] = []uint64{newSeq}
	return newSeq, nil
}

// runReplay is `ticketer replay --from-seq N [--to-seq M] | --since D [--force]`.
func runReplay(ctx context.Context, env *Env, args []string) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	from := fs.Uint64("from-seq", 0, "first FORMS sequence to re-process")
	to := fs.Uint64("to-seq", 0, "last FORMS sequence to re-process (default: the stream's last)")
	since := fs.Duration("since", 0, "re-process events stored within this duration (e.g. 2h)")
	force := fs.Bool("force", false, "create a ticket even when one is recorded (the record then points at the new one)")
	usage := func() error {
		fmt.Fprintln(env.Stderr, "usage: ticketer replay --from-seq N [--to-seq M] [--force] | ticketer replay --since DURATION [--to-seq M] [--force]")
		return errUsage
	}
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return usage()
	}
	if (*from > 0) == (*since > 0) {
		return usage()
	}
	if *to > 0 && *from > *to {
		return fmt.Errorf("replay: --to-seq %d is before --from-seq %d", *to, *from)
	}
	r, err := newReplayer(ctx, env)
	if err != nil {
		return err
	}
	defer r.close()
	forms, err := r.js.Stream(ctx, stream.Forms)
	if err != nil {
		return fmt.Errorf("stream %s: %w", stream.Forms, err)
	}
	dlq, err := dlqStream(ctx, r.js)
	if err != nil {
		return err
	}
	info, err := forms.Info(ctx)
	if err != nil {
		return fmt.Errorf("stream %s: %w", stream.Forms, err)
	}
	last := info.State.LastSeq
	if *to > 0 {
		last = min(last, *to)
	}
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: *from}
	if *since > 0 {
		t := time.Now().Add(-*since)
		cfg = jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &t}
	}
	var res ReplayResult
	firstSeq, lastSeq := uint64(0), uint64(0)
	for info.State.Msgs > 0 && (cfg.DeliverPolicy == jetstream.DeliverByStartTimePolicy || cfg.OptStartSeq <= last) {
		var items []Item
		err := readStream(ctx, forms, cfg, func(m jetstream.Msg) bool {
			md, err := m.Metadata()
			if err != nil {
				return true
			}
			if md.Sequence.Stream > last {
				return false
			}
			items = append(items, Item{Data: m.Data(), Subject: m.Subject(), Stream: stream.Forms, Seq: md.Sequence.Stream,
				Delivery: 1, Force: *force, NoDeadLetter: true})
			return len(items) < r.batchSize()
		})
		if err != nil {
			return fmt.Errorf("read %s: %w", stream.Forms, err)
		}
		if len(items) == 0 {
			break
		}
		if firstSeq == 0 {
			firstSeq = items[0].Seq
		}
		lastSeq = items[len(items)-1].Seq
		if err := r.replayForms(ctx, dlq, items, *force, &res); err != nil {
			printReplayResult(env.Stdout, res, firstSeq, lastSeq, *force)
			return err
		}
		cfg = jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: lastSeq + 1}
	}
	printReplayResult(env.Stdout, res, firstSeq, lastSeq, *force)
	if res.Failing > 0 {
		return fmt.Errorf("replay: %d event(s) still failing; see ticketer dlq list", res.Failing)
	}
	return nil
}

func printReplayResult(w io.Writer, res ReplayResult, first, last uint64, force bool) {
	rng := "no events in range"
	if first > 0 {
		rng = fmt.Sprintf("%s seq %d..%d", stream.Forms, first, last)
	}
	mode := ""
	if force {
		mode = ", forced"
	}
	fmt.Fprintf(w, "replay (%s%s): %d replayed: %d created, %d skipped (already ticketed), %d still failing\n",
		rng, mode, res.Replayed, res.Created, res.Skipped, res.Failing)
}

func (r *replayer) replayForms(ctx context.Context, dlq jetstream.Stream, items []Item, force bool, res *ReplayResult) error {
	outs := r.proc.Process(ctx, items)
	var authErr error
	for i, o := range outs {
		it := items[i]
		hash, name, email := "", "", ""
		if ev, err := stream.Unmarshal(it.Data); err == nil {
			hash, name, email = ev.GetHash(), form.String(ev, nameColumn), form.String(ev, emailColumn)
		}
		label := fmt.Sprintf("%s %d (hash %s, %s)", stream.Forms, it.Seq, shortHash(hash), who(name, email))
		res.Replayed++
		switch o.Status {
		case StatusCreated:
			res.Created++
			note := ""
			if force {
				note = " (forced; the record now points at it)"
			}
			fmt.Fprintf(r.out, "%s: created %s%s\n", label, o.Key, note)
		case StatusSkipped:
			res.Skipped++
			fmt.Fprintf(r.out, "%s: skipped, already ticketed %s\n", label, cmpOr(o.Key, "(same request earlier in this replay)"))
		case StatusRejected:
			res.Failing++
			seq, err := r.deadLetterFromReplay(ctx, dlq, hash, it, o.DeadLetter)
			where := fmt.Sprintf("dead-lettered as DLQ %d", seq)
			if err != nil {
				where = "not dead-lettered: " + err.Error()
			}
			fmt.Fprintf(r.out, "%s: failed, %s: %s\n", label, where, reasonText(*o.DeadLetter))
		case StatusAuth:
			res.Failing++
			authErr = o.Err
			fmt.Fprintf(r.out, "%s: Jira refuses the credentials\n", label)
		default:
			res.Failing++
			fmt.Fprintf(r.out, "%s: still failing (transient; run the replay again later): %s\n", label, oneLine(errString(o.Err)))
		}
	}
	r.count(outs)
	if authErr != nil {
		return fmt.Errorf("Jira refuses the credentials: %w", authErr)
	}
	return ctx.Err()
}

func errString(err error) string {
	if err == nil {
		return "unknown"
	}
	return strings.TrimSpace(err.Error())
}
