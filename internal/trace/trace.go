package trace

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/deadletters"
	"github.com/cowjacket/formjira/internal/form"
	"github.com/cowjacket/formjira/internal/index"
	"github.com/cowjacket/formjira/internal/stream"
)

// Tracer finds requests and tells their journeys. It only reads.
type Tracer struct {
	JS    jetstream.JetStream
	Index *index.Index
	// JiraURL, when set, makes browse links (JIRA_URL/browse/KEY).
	JiraURL string
	// Limit is how many journeys a result shows [20].
	Limit int
}

// Open is a Tracer over js, looking the index up.
func Open(ctx context.Context, js jetstream.JetStream, jiraURL string) (*Tracer, error) {
	kv, err := stream.LookupIndex(ctx, js)
	if err != nil {
		return nil, err
	}
	return &Tracer{JS: js, Index: &index.Index{KV: kv}, JiraURL: jiraURL}, nil
}

// ErrEmpty: the query is empty.
var ErrEmpty = errors.New("empty query: give a record hash (or 8+ hex digits of it), an e-mail, part of a name, id=N or a Jira key")

// Find answers q.
func (t *Tracer) Find(ctx context.Context, q string) (*Result, error) {
	start := time.Now()
	query := Parse(q)
	if query.Term == "" {
		return nil, ErrEmpty
	}
	hashes, err := t.lookup(ctx, query)
	if err != nil {
		return nil, err
	}
	res := &Result{Query: query, Matches: len(hashes), Journeys: []Journey{}}
	res.Indexed, _, _ = t.Index.Checkpoint(ctx)
	forms, err := t.JS.Stream(ctx, stream.Forms)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", stream.Forms, err)
	}
	res.FormsLast = forms.CachedInfo().State.LastSeq
	if len(hashes) == 0 {
		nc, err := t.notCaptured(ctx, query, res)
		if err != nil {
			return nil, err
		}
		res.NotCaptured = nc
		res.Took = Millis(time.Since(start))
		return res, nil
	}
	// Newest first: read where each one is, then keep the latest Limit.
	type found struct {
		hash  string
		entry *index.Entry
	}
	var all []found
	for _, h := range hashes {
		e, err := t.Index.Entry(ctx, h)
		if err != nil {
			return nil, err
		}
		all = append(all, found{h, e})
	}
	seq := func(f found) uint64 {
		if f.entry == nil {
			return 0
		}
		return f.entry.Seq
	}
	slices.SortFunc(all, func(a, b found) int { return cmp.Compare(seq(b), seq(a)) })
	limit := t.Limit
	if limit <= 0 {
		limit = 20
	}
	env := &lookups{t: t, forms: forms}
	for _, f := range all[:min(len(all), limit)] {
		j, err := env.journey(ctx, f.hash, f.entry)
		if err != nil {
			return nil, err
		}
		res.Journeys = append(res.Journeys, *j)
	}
	res.Took = Millis(time.Since(start))
	return res, nil
}

// lookup is the hashes matching q.
func (t *Tracer) lookup(ctx context.Context, q Query) ([]string, error) {
	switch q.Kind {
	case KindID:
		return t.Index.ByID(ctx, q.Term)
	case KindEmail:
		return t.Index.ByEmail(ctx, q.Term)
	case KindJiraKey:
		h, err := t.Index.ByJiraKey(ctx, q.Term)
		if h == "" || err != nil {
			return nil, err
		}
		return []string{h}, nil
	case KindHash:
		hs, err := t.Index.ByHashPrefix(ctx, q.Term)
		if len(hs) > 0 || err != nil || strings.ContainsAny(q.Term, "0123456789") {
			return hs, err
		}
		// Eight or more letters a–f only: maybe a name after all.
		return t.Index.ByName(ctx, q.Term)
	}
	return t.Index.ByName(ctx, q.Term)
}

// lookups caches what several journeys of one query share.
type lookups struct {
	t        *Tracer
	forms    jetstream.Stream
	tickets  *stream.Tickets
	dlq      jetstream.Stream
	dlqList  []*deadletters.Entry
	listed   bool
	consumer *jetstream.ConsumerInfo
}

func (l *lookups) journey(ctx context.Context, hash string, e *index.Entry) (*Journey, error) {
	j := &Journey{Hash: hash}
	st, err := l.t.Index.State(ctx, hash)
	if err != nil {
		return nil, err
	}
	rec, err := l.record(ctx, hash)
	if err != nil {
		return nil, err
	}
	seq := uint64(0)
	switch {
	case e != nil:
		seq = e.Seq
	case rec != nil:
		seq = rec.StreamSeq
	case st != nil:
		seq = st.Seq
	}
	if seq > 0 {
		j.Forms = &Forms{Seq: seq}
		if e != nil {
			j.Forms.Subject, j.Forms.Stored = e.Subject, e.Stored
		}
		m, err := l.forms.GetMsg(ctx, seq)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
			j.Forms.Gone = true
		case err != nil:
			return nil, fmt.Errorf("read %s seq %d: %w", stream.Forms, seq, err)
		default:
			j.Forms.Subject, j.Forms.Stored = m.Subject, m.Time.UTC()
			if ev, err := stream.Unmarshal(m.Data); err == nil && ev.GetHash() == hash {
				src := ev.GetSource()
				j.Name, j.Email = form.String(ev, deadletters.NameColumn), form.String(ev, deadletters.EmailColumn)
				j.Row = &Row{Table: src.GetSchema() + "." + src.GetTable(), PrimaryKey: index.PrimaryKey(ev), CommitLSN: src.GetCommitLsn()}
				if ct := src.GetCommitTime(); ct.IsValid() && ct.AsTime().Unix() > 0 {
					j.Row.CommitTime = ct.AsTime().UTC()
				}
				if j.Row.Table == "." {
					j.Row.Table = ""
				}
			}
		}
	}
	if st != nil {
		j.Delivery = Delivery{Deliveries: st.Deliveries, Replays: st.Replays, Status: st.Status, LastError: st.LastError, LastErrorAt: st.ErrorAt, At: st.At}
	}
	if rec != nil {
		j.Delivery.Record, j.Delivery.Attempts, j.Delivery.Failures = rec.State, rec.Attempt, rec.Failures
	}
	switch {
	case rec != nil && rec.State == stream.StateCreated && rec.Key != "":
		l.ticketed(j, rec)
	default:
		dl, err := l.deadLetter(ctx, hash, st)
		if err != nil {
			return nil, err
		}
		if dl != nil {
			l.deadLettered(j, dl)
			break
		}
		if err := l.onItsWay(ctx, j, rec); err != nil {
			return nil, err
		}
	}
	j.Steps = steps(j)
	return j, nil
}

func (l *lookups) record(ctx context.Context, hash string) (*stream.Record, error) {
	if l.tickets == nil {
		t, err := stream.LookupTickets(ctx, l.t.JS)
		if err != nil {
			return nil, nil // no ticketer ran yet: no records
		}
		l.tickets = &t
	}
	r, _, err := l.tickets.Get(ctx, hash)
	return r, err
}

func (l *lookups) ticketed(j *Journey, rec *stream.Record) {
	j.Outcome = Ticketed
	j.Ticket = &Ticket{Key: rec.Key, CreatedAt: rec.CreatedAt.UTC()}
	if l.t.JiraURL != "" {
		j.Ticket.URL = strings.TrimRight(l.t.JiraURL, "/") + "/browse/" + rec.Key
	}
	commit := rec.CommitTime
	if commit.IsZero() && j.Row != nil {
		commit = j.Row.CommitTime
	}
	if !commit.IsZero() && !rec.CreatedAt.IsZero() {
		j.Ticket.Latency = Millis(max(rec.CreatedAt.Sub(commit), 0))
	}
	j.Summary = "ticket " + rec.Key
	if j.Ticket.Latency > 0 {
		j.Summary += ", created " + j.Ticket.Latency.String() + " after the commit"
	}
}

// deadLetter is the request's entry in FORMS_DLQ: where the index says,
// else found by its hash among the dead letters.
func (l *lookups) deadLetter(ctx context.Context, hash string, st *index.State) (*deadletters.Entry, error) {
	if l.dlq == nil {
		dlq, err := deadletters.Open(ctx, l.t.JS)
		if err != nil {
			return nil, nil // no dead-letter stream: no dead letters
		}
		l.dlq = dlq
	}
	if st != nil && st.DLQSeq != 0 {
		e, err := deadletters.Get(ctx, l.dlq, st.DLQSeq)
		if err != nil {
			return nil, err
		}
		if e != nil && e.Hash == hash {
			return e, nil
		}
	}
	if !l.listed {
		info, err := l.dlq.Info(ctx)
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", stream.DLQ, err)
		}
		if info.State.Msgs > 0 {
			if l.dlqList, err = deadletters.List(ctx, l.dlq); err != nil {
				return nil, err
			}
		}
		l.listed = true
	}
	var found *deadletters.Entry
	for _, e := range l.dlqList {
		if e.Hash == hash {
			found = e // the latest one
		}
	}
	return found, nil
}

func (l *lookups) deadLettered(j *Journey, e *deadletters.Entry) {
	j.Outcome = DeadLettered
	j.DeadLetter = &DeadLetter{Seq: e.Seq, Stored: e.Time, Reason: e.Reason, ReasonText: e.ReasonText, FieldErrors: e.FieldErrors,
		Attempts: e.Attempts, Replay: "ticketer dlq replay " + strconv.FormatUint(e.Seq, 10)}
	if e.FromCapture() {
		j.DeadLetter.Replay = "fix the row, then `capture backfill` (capture's dead letters are never replayed)"
	}
	j.Summary = fmt.Sprintf("dead letter %d: %s", e.Seq, e.ReasonText)
	if j.Name == "" {
		j.Name, j.Email = e.Name, e.Email
	}
}

func (l *lookups) onItsWay(ctx context.Context, j *Journey, rec *stream.Record) error {
	j.Outcome = OnItsWay
	p := &Position{}
	j.OnItsWay = p
	if l.consumer == nil {
		c, err := l.t.JS.Consumer(ctx, stream.Forms, stream.TicketerConsumer)
		if err == nil {
			l.consumer, err = c.Info(ctx)
		}
		if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("consumer %s on %s: %w", stream.TicketerConsumer, stream.Forms, err)
		}
	}
	seq := uint64(0)
	if j.Forms != nil {
		seq = j.Forms.Seq
	}
	ci := l.consumer
	switch {
	case ci == nil:
		p.State = "waiting in FORMS: no ticketer has consumed yet (consumer " + stream.TicketerConsumer + " missing)"
	default:
		p.Delivered, p.AckFloor, p.Pending, p.AckPending = ci.Delivered.Stream, ci.AckFloor.Stream, ci.NumPending, ci.NumAckPending
		switch {
		case seq > ci.Delivered.Stream:
			p.Ahead = seq - ci.Delivered.Stream - 1
			p.State = fmt.Sprintf("waiting in FORMS, not delivered yet: %d event(s) before it (the consumer is at FORMS seq %d, %d waiting in all)",
				p.Ahead, ci.Delivered.Stream, ci.NumPending)
		case rec != nil && rec.State == stream.StateClaimed:
			p.State = "being worked on: a create is under way, or its outcome is being reconciled with Jira"
		case seq > ci.AckFloor.Stream:
			p.State = "delivered and not yet settled: being retried (see the last error), or waiting for its redelivery"
		default:
			p.State = fmt.Sprintf("processed, but no ticket is recorded and no dead letter is left (removed by hand?): `ticketer replay --from-seq %d --to-seq %d` re-processes it", seq, seq)
		}
	}
	j.Summary = "still on its way: " + p.State
	return nil
}

// notCaptured explains an empty answer with what capture says.
func (t *Tracer) notCaptured(ctx context.Context, q Query, res *Result) (*NotCaptured, error) {
	caps, err := stream.ReadCaptureStatus(ctx, t.JS)
	if err != nil {
		return nil, err
	}
	nc := &NotCaptured{Captures: caps}
	if nc.Captures == nil {
		nc.Captures = []stream.CaptureStatus{}
	}
	var b strings.Builder
	if q.Kind == KindJiraKey {
		// Keys are indexed as ticketer records them: one made before the
		// index existed, or whose entry was dropped, is not there.
		fmt.Fprintf(&b, "no request in the index has ticket %s: it may not be one of ours, or it was made before the index existed (or its index entry was dropped); search by the requester's e-mail or name", q.Term)
		nc.Note = b.String()
		return nc, nil
	}
	dead, err := t.captureDeadLetters(ctx, q)
	if err != nil {
		return nil, err
	}
	if len(dead) > 0 {
		fmt.Fprintf(&b, "no request in FORMS matches %s %q: capture dead-lettered it", q.Kind, q.Term)
		for _, e := range dead {
			nc.CaptureDeadLetters = append(nc.CaptureDeadLetters, e.Seq)
			fmt.Fprintf(&b, "; %s %d (%s): %s", stream.DLQ, e.Seq, e.Reason, e.Error)
		}
		b.WriteString(". Fix the row in the database, then `capture backfill` (capture's dead letters are not replayed)")
		nc.Note = b.String()
		return nc, nil
	}
	fmt.Fprintf(&b, "no request in FORMS matches %s %q: not captured", q.Kind, q.Term)
	switch {
	case len(caps) == 0:
		b.WriteString("; no capture is running (none has reported to " + stream.CaptureStatusBucket + " within a minute): start capture, then `capture backfill` publishes rows already in the table")
	default:
		active := false
		for _, c := range caps {
			if c.Role == stream.RoleActive {
				active = true
				fmt.Fprintf(&b, "; capture %s is active on %s, confirmed LSN %s", c.Instance, c.Table, c.ConfirmedLSN)
				if !c.ConfirmedAt.IsZero() {
					fmt.Fprintf(&b, " (moved %s ago)", time.Since(c.ConfirmedAt).Round(time.Second))
				}
				fmt.Fprintf(&b, ", slot lag %d bytes", c.SlotLagBytes)
				if c.LastError != "" {
					fmt.Fprintf(&b, ", last error: %s", c.LastError)
				}
			}
		}
		if !active {
			b.WriteString("; no capture is active (only standbys): nothing is being captured")
		}
		b.WriteString(". If the row was committed, check its table and id (`capture status`), or publish it with `capture backfill`")
	}
	if res.Indexed < res.FormsLast {
		fmt.Fprintf(&b, " (the index covers FORMS up to seq %d of %d: a request from the last seconds may not be found yet)", res.Indexed, res.FormsLast)
	}
	nc.Note = b.String()
	return nc, nil
}

// captureDeadLetters are capture's dead letters in FORMS_DLQ that match q:
// rows that never reached FORMS, so nothing indexed them.
func (t *Tracer) captureDeadLetters(ctx context.Context, q Query) ([]*deadletters.Entry, error) {
	dlq, err := t.JS.Stream(ctx, stream.DLQ)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", stream.DLQ, err)
	}
	if dlq.CachedInfo().State.Msgs == 0 {
		return nil, nil
	}
	entries, err := deadletters.List(ctx, dlq)
	if err != nil {
		return nil, err
	}
	var out []*deadletters.Entry
	for _, e := range entries {
		if e.FromCapture() && matchesEntry(q, e) {
			out = append(out, e)
		}
	}
	return out, nil
}

// matchesEntry: q would find e's row, were it indexed.
func matchesEntry(q Query, e *deadletters.Entry) bool {
	switch q.Kind {
	case KindHash:
		if strings.HasPrefix(e.Hash, strings.ToLower(q.Term)) {
			return true
		}
		if strings.ContainsAny(q.Term, "0123456789") {
			return false
		}
		// Eight or more letters a–f only: maybe a name after all, as in lookup.
	case KindEmail:
		return e.Email != "" && index.EmailTerm(e.Email) == index.EmailTerm(q.Term)
	case KindID:
		ev, err := stream.Unmarshal(e.Data)
		return err == nil && index.PrimaryKey(ev) != "" && index.IDTerm(index.PrimaryKey(ev)) == index.IDTerm(q.Term)
	case KindJiraKey:
		return false
	}
	words := index.NameTerms(e.Name)
	for _, w := range index.NameTerms(q.Term) {
		if !slices.Contains(words, w) {
			return false
		}
	}
	return len(words) > 0 && len(index.NameTerms(q.Term)) > 0
}
