package alert

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sethvargo/go-retry"
)

// sendQueueSize bounds composed messages waiting per sink. Messages are
// already aggregated, so a handful covers any burst while a sink retries.
const sendQueueSize = 32

// topReasons is how many dead-letter reasons a digest lists one by one.
const topReasons = 10

// Alerter aggregates, rate-limits and delivers alerts in the background.
// Notify never blocks; Run does the work. A nil *Alerter, or one without
// sinks, is a no-op.
type Alerter struct {
	cfg   Config
	log   *slog.Logger
	sinks []Sink
	in    chan Alert
	now   func() time.Time

	running     atomic.Bool
	dropped     atomic.Int64 // Notify calls refused since the last message
	failed      atomic.Int64 // messages given up on since the last message
	stats       struct{ dropped, failed, sent atomic.Int64 }
	droppedOnce atomic.Bool
}

// Stats counts what happened since New, for metrics and tests.
type Stats struct {
	Dropped int64 // alerts refused by Notify because the buffer was full
	Failed  int64 // messages (per sink) given up on after retries or a full send queue
	Sent    int64 // messages (per sink) delivered
}

// New builds an Alerter that delivers to sinks, or to cfg.Sinks() when
// none are given. With no sink at all it is a no-op. logger may be nil.
func New(cfg Config, logger *slog.Logger, sinks ...Sink) *Alerter {
	cfg = cfg.withDefaults()
	if len(sinks) == 0 {
		sinks = cfg.Sinks()
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	a := &Alerter{cfg: cfg, log: logger, sinks: sinks, now: time.Now}
	if len(sinks) > 0 {
		a.in = make(chan Alert, cfg.QueueSize)
	}
	return a
}

// Enabled reports whether alerts go anywhere.
func (a *Alerter) Enabled() bool { return a != nil && len(a.sinks) > 0 }

// Stats returns delivery counters.
func (a *Alerter) Stats() Stats {
	if a == nil {
		return Stats{}
	}
	return Stats{Dropped: a.stats.dropped.Load(), Failed: a.stats.failed.Load(), Sent: a.stats.sent.Load()}
}

// Notify queues al and returns at once. When the buffer is full the alert
// is dropped and counted; the next message says how many were lost.
// Notify takes ownership of al.Fields.
func (a *Alerter) Notify(al Alert) {
	if !a.Enabled() {
		return
	}
	if al.At.IsZero() {
		al.At = a.now()
	}
	if al.Count <= 0 {
		al.Count = 1
	}
	select {
	case a.in <- al:
	default:
		a.dropped.Add(1)
		a.stats.dropped.Add(1)
		// One log line per Run, not per drop: a full buffer means a storm.
		if a.droppedOnce.CompareAndSwap(false, true) {
			a.log.Warn("alert queue full, dropping alerts", "kind", al.Kind)
		}
	}
}

// Run aggregates and delivers alerts until ctx is done, then flushes what
// is pending, bounded by Config.FlushTimeout. It returns nil on shutdown.
func (a *Alerter) Run(ctx context.Context) error {
	if !a.Enabled() {
		<-ctx.Done()
		return nil
	}
	if !a.running.CompareAndSwap(false, true) {
		return errors.New("alert: Run called twice")
	}
	// Senders outlive ctx so the final flush can still go out.
	sendCtx, cancelSend := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSend()
	var wg sync.WaitGroup
	queues := make([]chan message, len(a.sinks))
	for i, s := range a.sinks {
		q := make(chan message, sendQueueSize)
		queues[i] = q
		wg.Go(func() {
			for m := range q {
				a.deliver(sendCtx, s, m)
			}
		})
	}
	st := &state{a: a, queues: queues, kinds: map[Kind]*kindState{}}

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		timer.Stop()
		if due, ok := st.nextDue(); ok {
			timer.Reset(time.Until(due))
		}
		select {
		case al := <-a.in:
			st.add(a.now(), al)
		case <-timer.C:
			st.flush(a.now(), false)
		case <-ctx.Done():
			for drained := false; !drained; {
				select {
				case al := <-a.in:
					st.add(a.now(), al)
				default:
					drained = true
				}
			}
			st.flush(a.now(), true)
			for _, q := range queues {
				close(q)
			}
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(a.cfg.FlushTimeout):
				a.log.Warn("alert flush timed out; pending alert messages dropped", "timeout", a.cfg.FlushTimeout)
				cancelSend() // sinks honour ctx, so senders return promptly
				<-done
			}
			return nil
		}
	}
}

// message is one composed notification, delivered to every sink.
type message struct {
	subject, body string
	alerts        []Alert
}

func sinkName(s Sink) string {
	if n, ok := s.(fmt.Stringer); ok {
		return n.String()
	}
	return fmt.Sprintf("%T", s)
}

// deliver sends m to s with exponential backoff and jitter, logging each
// failure once, and gives up after SendAttempts.
func (a *Alerter) deliver(ctx context.Context, s Sink, m message) {
	b := retry.NewExponential(a.cfg.RetryBase)
	b = retry.WithJitterPercent(20, b)
	b = retry.WithCappedDuration(a.cfg.RetryMax, b)
	b = retry.WithMaxRetries(uint64(a.cfg.SendAttempts-1), b)
	attempt := 0
	var lastErr error
	err := retry.Do(ctx, b, func(ctx context.Context) error {
		attempt++
		sctx, cancel := context.WithTimeout(ctx, a.cfg.SendTimeout)
		defer cancel()
		err := s.Send(sctx, m.subject, m.body, m.alerts)
		if err == nil {
			return nil
		}
		lastErr = err
		if errors.Is(err, ErrPermanent) {
			return err
		}
		if attempt < a.cfg.SendAttempts {
			a.log.Warn("alert send failed; retrying", "sink", sinkName(s), "attempt", attempt, "subject", m.subject, "error", err)
		}
		return retry.RetryableError(err)
	})
	if err == nil {
		a.stats.sent.Add(1)
		if attempt > 1 {
			a.log.Info("alert sent after retries", "sink", sinkName(s), "attempt", attempt, "subject", m.subject)
		}
		return
	}
	if lastErr == nil {
		lastErr = err
	}
	a.failed.Add(1)
	a.stats.failed.Add(1)
	a.log.Error("alert send failed; message dropped", "sink", sinkName(s), "attempt", attempt, "subject", m.subject, "error", lastErr)
}

// state is Run's aggregation state; only Run's goroutine touches it.
type state struct {
	a      *Alerter
	queues []chan message
	digest digest
	kinds  map[Kind]*kindState
}

type digest struct {
	reasons map[string]*Alert // reason → aggregated alert (Count summed, latest Detail)
	total   int
	since   time.Time // first dead letter in this digest
	due     time.Time
}

type kindState struct {
	sent         bool // a message for this kind has gone out
	lastSent     time.Time
	lastResolved bool   // the last message sent said "resolved"
	pending      int    // firings folded since lastSent
	latest       *Alert // newest folded alert; nil when nothing is pending
	pendingSince time.Time
}

func (s *state) nextDue() (time.Time, bool) {
	var due time.Time
	if s.digest.total > 0 {
		due = s.digest.due
	}
	for _, k := range s.kinds {
		if k.latest == nil {
			continue
		}
		d := k.lastSent.Add(s.a.cfg.MinInterval)
		if due.IsZero() || d.Before(due) {
			due = d
		}
	}
	return due, !due.IsZero()
}

func (s *state) add(now time.Time, al Alert) {
	if al.Kind == DeadLetter {
		d := &s.digest
		if d.total == 0 {
			d.reasons = map[string]*Alert{}
			d.since = now
			d.due = now.Add(s.a.cfg.DigestInterval)
		}
		reason := al.headline()
		if r, ok := d.reasons[reason]; ok {
			r.Count += al.Count
			r.Detail, r.At, r.Fields = al.Detail, al.At, al.Fields
		} else {
			al.Summary = reason
			d.reasons[reason] = &al
		}
		d.total += al.Count
		return
	}

	k := s.kinds[al.Kind]
	if k == nil {
		k = &kindState{}
		s.kinds[al.Kind] = k
	}
	if al.Resolved && !al.Elsewhere && k.latest == nil && (!k.sent || k.lastResolved) {
		return // nothing was announced that this could resolve
	}
	open := !k.sent || now.Sub(k.lastSent) >= s.a.cfg.MinInterval
	// A resolution right after the alert it ends is news worth sending at
	// once; Condition only fires after its duration, so this cannot storm.
	if al.Resolved && k.sent && !k.lastResolved {
		open = true
	}
	if !open {
		if !al.Resolved {
			k.pending += al.Count
			if k.pendingSince.IsZero() {
				k.pendingSince = al.At
			}
		}
		k.latest = &al
		return
	}
	s.sendKind(now, k, al, false)
}

// sendKind sends al for its kind, folding in what was pending. counted
// says al's own Count is already in k.pending (it was folded earlier).
func (s *state) sendKind(now time.Time, k *kindState, al Alert, counted bool) {
	count, since := k.pending, k.pendingSince
	if !al.Resolved && !counted {
		count += al.Count
	}
	if since.IsZero() {
		since = al.At
	}
	k.sent, k.lastSent, k.lastResolved = true, now, al.Resolved
	k.pending, k.latest, k.pendingSince = 0, nil, time.Time{}
	s.enqueue(s.kindMessage(al, count, since))
}

func (s *state) flush(now time.Time, final bool) {
	if s.digest.total > 0 && (final || !now.Before(s.digest.due)) {
		s.enqueue(s.digestMessage(now))
		s.digest = digest{}
	}
	kinds := make([]Kind, 0, len(s.kinds))
	for kind := range s.kinds {
		kinds = append(kinds, kind)
	}
	sort.Slice(kinds, func(i, j int) bool { return kinds[i] < kinds[j] })
	for _, kind := range kinds {
		k := s.kinds[kind]
		if k.latest == nil || (!final && now.Sub(k.lastSent) < s.a.cfg.MinInterval) {
			continue
		}
		s.sendKind(now, k, *k.latest, true)
	}
}

func (s *state) enqueue(m message) {
	for i, q := range s.queues {
		select {
		case q <- m:
		default:
			// The sink is far behind (down and retrying); losing one
			// message beats blocking aggregation.
			s.a.failed.Add(1)
			s.a.stats.failed.Add(1)
			s.a.log.Error("alert send queue full; message dropped", "sink", sinkName(s.a.sinks[i]), "subject", m.subject)
		}
	}
}
