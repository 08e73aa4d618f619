// Package stats keeps and reads ticketer's daily figures, for `ticketer
// stats`, the daily summary log line and the console.
package stats

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/sethvargo/go-retry"

	"github.com/cowjacket/formjira/internal/stream"
)

// Where the daily figures live:
//
//   - created, failed, skipped, dead_lettered: stream FORMS_STATS, a
//     JetStream counter stream (AllowMsgCounter). Each replica adds its own
//     counts to forms.stats.<YYYY-MM-DD>.<name> with a Nats-Incr header and
//     the server keeps the sum, so any number of replicas (and the replay
//     commands) aggregate correctly without coordinating.
//   - commit → ticket latency: the idempotency records in FORMS_TICKETS,
//     which carry created_at and the row's commit_time. `stats` reads the
//     records written in the window (the bucket's stream, from the window's
//     first midnight) and computes exact percentiles per day.
//
// Days are UTC days.
const (
	Created      = "created"
	Failed       = "failed"
	Skipped      = "skipped"
	DeadLettered = "dead_lettered"
	// JiraDownSeconds is how long Jira was unreachable (the circuit open),
	// added by the replica that saw it come back.
	JiraDownSeconds = "jira_down_seconds"
	// statSummaries elects the one replica that logs a day's summary.
	statSummaries = "summaries"

	statsFlushEvery = 10 * time.Second
	// summaryGrace is how long after midnight the summary is logged, so
	// every replica has flushed the last counts of the day.
	summaryGrace = statsFlushEvery + 5*time.Second
	dayFormat    = "2006-01-02"
)

var statNames = []string{Created, Failed, Skipped, DeadLettered, JiraDownSeconds}

// Recorder counts outcomes in memory and adds them to FORMS_STATS
// every statsFlushEvery. A nil *Recorder records nothing.
type Recorder struct {
	js  jetstream.JetStream
	log *slog.Logger
	id  string // this process, for the increments' Nats-Msg-Id
	// summaryBackoff, when set (tests), paces a summary's retries.
	summaryBackoff func() retry.Backoff
	now            func() time.Time

	mu      sync.Mutex
	counts  map[[2]string]int64 // {day, name} → not yet flushed
	pending []statIncr          // flushed but not acknowledged: re-sent as is
	gen     uint64
}

// statIncr is one increment in flight. Re-sending it with the same id
// after a lost acknowledgement is collapsed by the stream's duplicate
// window, so a flush retry never counts twice.
type statIncr struct {
	subject, id string
	n           int64
}

// NewRecorder counts for the process; add its outcomes with Count or Add.
func NewRecorder(js jetstream.JetStream, log *slog.Logger) *Recorder {
	return &Recorder{js: js, log: log, id: nuid.Next(), now: time.Now, counts: map[[2]string]int64{}}
}

// Add counts n of the figure name (Created, Skipped, …) today.
func (r *Recorder) Add(name string, n int) {
	if r == nil || n == 0 {
		return
	}
	day := r.now().UTC().Format(dayFormat)
	r.mu.Lock()
	r.counts[[2]string{day, name}] += int64(n)
	r.mu.Unlock()
}

// Flush adds what was counted to FORMS_STATS; what fails stays pending.
func (r *Recorder) Flush(ctx context.Context) error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	keys := make([][2]string, 0, len(r.counts))
	for k := range r.counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [2]string) int {
		if c := cmp.Compare(a[0], b[0]); c != 0 {
			return c
		}
		return cmp.Compare(a[1], b[1])
	})
	for _, k := range keys {
		r.gen++
		r.pending = append(r.pending, statIncr{subject: stream.StatSubject(k[0], k[1]), id: r.id + ":" + strconv.FormatUint(r.gen, 10), n: r.counts[k]})
	}
	clear(r.counts)
	todo := r.pending
	r.pending = nil
	r.mu.Unlock()

	var errs []error
	var left []statIncr
	for _, in := range todo {
		m := nats.NewMsg(in.subject)
		m.Header.Set("Nats-Incr", "+"+strconv.FormatInt(in.n, 10))
		m.Header.Set(nats.MsgIdHdr, in.id)
		if _, err := r.js.PublishMsg(ctx, m); err != nil {
			errs = append(errs, err)
			left = append(left, in)
		}
	}
	if len(left) > 0 {
		r.mu.Lock()
		r.pending = append(left, r.pending...)
		r.mu.Unlock()
	}
	if len(errs) > 0 {
		return fmt.Errorf("add counts to %s: %w", stream.Stats, errors.Join(errs...))
	}
	return nil
}

// Run flushes periodically and once more when ctx ends.
func (r *Recorder) Run(ctx context.Context) {
	if r == nil {
		return
	}
	t := time.NewTicker(statsFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			if err := r.Flush(fctx); err != nil {
				r.log.Warn("daily counters not saved at shutdown", "err", err)
			}
			cancel()
			return
		case <-t.C:
			if err := r.Flush(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("daily counters not saved yet; retrying", "err", err)
			}
		}
	}
}

// DailySummaries logs the previous day's summary shortly after each
// midnight UTC, and at start if no replica has. With several replicas only
// the first to claim the day (an increment of forms.stats.<day>.summaries
// that makes it 1) logs it.
func (r *Recorder) DailySummaries(ctx context.Context) {
	if r == nil {
		return
	}
	// next is armed before anything runs and then moves a day at a time: a
	// slow run (NATS away) must not make the loop skip a midnight.
	now := r.now().UTC()
	midnight := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	next := midnight.Add(summaryGrace)
	if !now.Before(next) {
		// Started after midnight (a restart, a deploy at 00:00): yesterday's
		// line is logged now unless some replica's claim came first.
		r.summary(ctx, midnight.Add(-time.Hour).Format(dayFormat))
		next = next.Add(24 * time.Hour)
	}
	for {
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		r.summary(ctx, next.Add(-summaryGrace-time.Hour).Format(dayFormat))
		next = next.Add(24 * time.Hour)
	}
}

// summary logs day's summary, retrying a failed claim or read (NATS away
// at midnight) for up to summaryRetryFor: a won claim must not leave the
// day unlogged.
func (r *Recorder) summary(ctx context.Context, day string) {
	var c summaryClaim
	b := retry.WithMaxDuration(summaryRetryFor, retry.WithCappedDuration(time.Minute, retry.NewExponential(time.Second)))
	if r.summaryBackoff != nil {
		b = r.summaryBackoff()
	}
	err := retry.Do(ctx, b, func(ctx context.Context) error {
		err := r.logSummary(ctx, day, &c)
		if err != nil && ctx.Err() == nil && !claimInProcess(err) && c.attempts%10 == 1 { // the first failure, then every tenth
			r.log.Warn("daily summary not logged yet; retrying", "day", day, "attempt", c.attempts, "err", err)
		}
		return retry.RetryableError(err)
	})
	if err != nil && ctx.Err() == nil {
		r.log.Warn("daily summary failed", "day", day, "attempts", c.attempts, "err", err)
	}
}

// summaryRetryFor bounds the retries of a day's summary, well inside
// FORMS_STATS' duplicate window (an hour), which keeps retried claims one.
const summaryRetryFor = 30 * time.Minute

// claimantHeader names the replica (Recorder.id) a summary claim is from.
const claimantHeader = "Formjira-Claimant"

// claimedByUs reads the stored claim at seq: ours, and the first?
func (r *Recorder) claimedByUs(ctx context.Context, seq uint64) (bool, error) {
	st, err := r.js.Stream(ctx, stream.Stats)
	if err != nil {
		return false, fmt.Errorf("read the summary's claim: %w", err)
	}
	m, err := st.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false, nil // a later claim took its place: not the first
	}
	if err != nil {
		return false, fmt.Errorf("read the summary's claim: %w", err)
	}
	var v struct {
		Val string `json:"val"`
	}
	_ = json.Unmarshal(m.Data, &v)
	return m.Header.Get(claimantHeader) == r.id && v.Val == "1", nil
}

// claimInProcess: a replicated FORMS_STATS still proposing another
// replica's claim (JSStreamDuplicateMessageConflict); the retry settles it.
func claimInProcess(err error) bool {
	var ae *jetstream.APIError
	return errors.As(err, &ae) && ae.ErrorCode == 10158
}

// summaryClaim is where one replica's attempts at a day's summary are.
type summaryClaim struct {
	attempts int
	won      bool // this replica logs the day: only the read is left
}

// logSummary logs day's summary unless another replica claimed it first.
// The claim is a deduplicated increment naming its replica: the one whose
// increment made the counter 1 logs. A claim answered as a duplicate may
// be our own, stored while its answer was lost (nats.go re-sends a claim
// buffered through a disconnection after its caller gave up): the stored
// claim says whose it is.
func (r *Recorder) logSummary(ctx context.Context, day string, c *summaryClaim) error {
	c.attempts++
	if err := r.Flush(ctx); err != nil && c.attempts == 1 {
		r.log.Warn("daily counters not saved before the summary", "err", err)
	}
	if !c.won {
		m := nats.NewMsg(stream.StatSubject(day, statSummaries))
		m.Header.Set("Nats-Incr", "+1")
		m.Header.Set(nats.MsgIdHdr, "summary:"+day)
		m.Header.Set(claimantHeader, r.id)
		ack, err := r.js.PublishMsg(ctx, m)
		if err != nil {
			return fmt.Errorf("claim the summary of %s: %w", day, err)
		}
		won := !ack.Duplicate && ack.Value == "1"
		if ack.Duplicate {
			if won, err = r.claimedByUs(ctx, ack.Sequence); err != nil {
				return err
			}
		}
		if !won {
			r.log.Debug("daily summary claimed by another replica", "day", day)
			return nil
		}
		c.won = true
	}
	t, _ := time.Parse(dayFormat, day)
	days, err := Read(ctx, r.js, t, 1)
	if err != nil {
		return err
	}
	d := days[0]
	r.log.Info("daily summary "+d.Line(), "day", d.Day, "created", d.Created, "failed", d.Failed, "skipped", d.Skipped,
		"dead_lettered", d.DeadLettered, "latency_p50_ms", d.P50.Milliseconds(), "latency_p99_ms", d.P99.Milliseconds(), "latency_samples", d.LatencySamples)
	return nil
}

// DayStats is one UTC day's figures.
type DayStats struct {
	Day            string        `json:"day"`
	Created        int64         `json:"created"`
	Failed         int64         `json:"failed"`
	Skipped        int64         `json:"skipped"`
	DeadLettered   int64         `json:"dead_lettered"`
	LatencySamples int           `json:"latency_samples"`
	P50            time.Duration `json:"latency_p50_ns"`
	P99            time.Duration `json:"latency_p99_ns"`
	// JiraDown is how long Jira was unreachable that day (outages ending
	// that day).
	JiraDown time.Duration `json:"jira_down_ns,omitempty"`
}

// Line is the summary in words: the daily log line and `ticketer stats`.
func (d DayStats) Line() string {
	lat := "commit→ticket latency: no samples"
	if d.LatencySamples > 0 {
		lat = fmt.Sprintf("commit→ticket p50 %s, p99 %s (%d samples)", fmtLatency(d.P50), fmtLatency(d.P99), d.LatencySamples)
	}
	down := ""
	if d.JiraDown > 0 {
		down = "; Jira unreachable for " + d.JiraDown.String()
	}
	return fmt.Sprintf("%s: %d created, %d failed, %d skipped as duplicates, %d dead-lettered; %s%s",
		d.Day, d.Created, d.Failed, d.Skipped, d.DeadLettered, lat, down)
}

func fmtLatency(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < 10*time.Second:
		return d.Round(time.Millisecond).String()
	default:
		return d.Round(100 * time.Millisecond).String()
	}
}

// Read reads n days starting at first (a UTC midnight).
func Read(ctx context.Context, js jetstream.JetStream, first time.Time, n int) ([]DayStats, error) {
	out := make([]DayStats, n)
	index := map[string]int{}
	for i := range out {
		out[i].Day = first.AddDate(0, 0, i).Format(dayFormat)
		index[out[i].Day] = i
	}
	st, err := js.Stream(ctx, stream.Stats)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		// No counters yet: nothing ran since stats were introduced.
	case err != nil:
		return nil, fmt.Errorf("stream %s: %w", stream.Stats, err)
	default:
		for i := range out {
			for _, name := range statNames {
				v, err := counterValue(ctx, st, stream.StatSubject(out[i].Day, name))
				if err != nil {
					return nil, err
				}
				switch name {
				case Created:
					out[i].Created = v
				case Failed:
					out[i].Failed = v
				case Skipped:
					out[i].Skipped = v
				case DeadLettered:
					out[i].DeadLettered = v
				case JiraDownSeconds:
					out[i].JiraDown = time.Duration(v) * time.Second
				}
			}
		}
	}
	lat, err := latencies(ctx, js, first, first.AddDate(0, 0, n))
	if err != nil {
		return nil, err
	}
	for day, ds := range lat {
		i, ok := index[day]
		if !ok {
			continue
		}
		slices.Sort(ds)
		out[i].LatencySamples = len(ds)
		out[i].P50, out[i].P99 = percentile(ds, 0.50), percentile(ds, 0.99)
	}
	return out, nil
}

func counterValue(ctx context.Context, st jetstream.Stream, subject string) (int64, error) {
	m, err := st.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", subject, err)
	}
	var v struct {
		Val string `json:"val"`
	}
	if err := json.Unmarshal(m.Data, &v); err != nil {
		return 0, fmt.Errorf("read %s: %w", subject, err)
	}
	n, err := strconv.ParseInt(v.Val, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("read %s: counter %q: %w", subject, v.Val, err)
	}
	return n, nil
}

// latencies reads the ticket records written since from and returns, per
// UTC day of creation in [from, to), the commit → ticket latencies.
func latencies(ctx context.Context, js jetstream.JetStream, from, to time.Time) (map[string][]time.Duration, error) {
	out := map[string][]time.Duration{}
	st, err := js.Stream(ctx, stream.TicketsStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("KV bucket %s: %w", stream.TicketsBucket, err)
	}
	err = stream.ReadAll(ctx, st, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &from},
		func(m jetstream.Msg) bool {
			var r stream.Record
			if json.Unmarshal(m.Data(), &r) != nil || r.State != stream.StateCreated || r.CommitTime.IsZero() {
				return true
			}
			if r.CreatedAt.Before(from) || !r.CreatedAt.Before(to) {
				return true
			}
			day := r.CreatedAt.UTC().Format(dayFormat)
			out[day] = append(out[day], max(r.CreatedAt.Sub(r.CommitTime), 0))
			return true
		})
	if err != nil {
		return nil, fmt.Errorf("read ticket records: %w", err)
	}
	return out, nil
}

// percentile is the nearest-rank q-quantile of sorted ds.
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := int(float64(len(ds))*q+0.999999999) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}
