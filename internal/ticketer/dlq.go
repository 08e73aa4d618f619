package ticketer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/form"
	"github.com/cowjacket/formjira/internal/stream"
)

// HeaderReplayedFrom is set on a dead letter that replaced an earlier one
// after a replay that still failed: the earlier entry's FORMS_DLQ sequence.
const HeaderReplayedFrom = "Cowjacket-Replayed-From"

// Columns of the form that identify the requester in listings.
const (
	nameColumn  = "newusername"
	emailColumn = "emailaddress"
)

// DeadLetterEntry is one message of FORMS_DLQ as `dlq list --json` shows it.
type DeadLetterEntry struct {
	Seq          uint64    `json:"seq"`
	Time         time.Time `json:"time"`
	Subject      string    `json:"subject"`
	Hash         string    `json:"hash"`
	Name         string    `json:"name"`
	Email        string    `json:"email"`
	Attempts     int       `json:"attempts"`
	Reason       string    `json:"reason"`
	ReasonText   string    `json:"reason_text"`
	Error        string    `json:"error"`
	FieldErrors  []string  `json:"field_errors,omitempty"`
	OrigStream   string    `json:"original_stream,omitempty"`
	OrigSeq      uint64    `json:"original_seq,omitempty"`
	FirstFailure time.Time `json:"first_failure,omitzero"`
	LastFailure  time.Time `json:"last_failure,omitzero"`

	dl     stream.DeadLetter
	data   []byte
	header nats.Header
}

func newEntry(seq uint64, at time.Time, subject string, h nats.Header, data []byte) *DeadLetterEntry {
	dl := stream.ParseDeadLetter(h)
	e := &DeadLetterEntry{
		Seq: seq, Time: at.UTC(), Subject: subject, Hash: dl.Hash, Attempts: dl.Attempts,
		Reason: dl.Reason, ReasonText: reasonText(dl), Error: dl.Error, FieldErrors: dl.FieldErrors,
		OrigStream: dl.OrigStream, OrigSeq: dl.OrigSeq, FirstFailure: dl.FirstFailure, LastFailure: dl.LastFailure,
		dl: dl, data: data, header: h,
	}
	if ev, err := stream.Unmarshal(data); err == nil {
		e.Name, e.Email = form.String(ev, nameColumn), form.String(ev, emailColumn)
		if e.Hash == "" {
			e.Hash = ev.GetHash()
		}
	}
	return e
}

// reasonTitles put the reason codes in words.
var reasonTitles = map[string]string{
	stream.ReasonJiraRejected: "Jira refused the ticket",
	stream.ReasonUnmappable:   "the row cannot be mapped to Jira's fields",
	stream.ReasonExhausted:    "Jira kept failing; gave up",
	stream.ReasonUndecodable:  "the row or event cannot be decoded",
	stream.ReasonTooLarge:     "the event is too large for the stream",
}

// reasonText is the reason in words: the category, then Jira's (or the
// mapping's) complaint per field, each naming the field id and name.
func reasonText(d stream.DeadLetter) string {
	title := reasonTitles[d.Reason]
	if title == "" {
		title = cmpOr(d.Reason, "unknown reason")
	}
	detail := strings.Join(d.FieldErrors, "; ")
	if detail == "" {
		detail = d.Error
	}
	if detail == "" {
		return title
	}
	return title + ": " + detail
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// fieldTarget pulls "customfield_10073 (Department)" out of a field error
// (mapping: `column "x" → id (Name): msg`; Jira: `id (Name): msg`).
var fieldTarget = regexp.MustCompile(`^(?:column "[^"]*" → )?([^:]+):`)

// reasonKey groups dead letters for alert digests: the code and the
// fields involved, e.g. "unmappable: customfield_10073 (Department)".
func reasonKey(d stream.DeadLetter) string {
	var fields []string
	for _, fe := range d.FieldErrors {
		if m := fieldTarget.FindStringSubmatch(fe); m != nil {
			fields = appendUnique(fields, strings.TrimSpace(m[1]))
		}
	}
	title := reasonTitles[d.Reason]
	if title == "" {
		title = cmpOr(d.Reason, "unknown reason")
	}
	if len(fields) == 0 {
		return title
	}
	return title + ": " + strings.Join(fields, ", ")
}

func appendUnique(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// who is "Name <email>" of an entry, for listings and reports.
func who(name, email string) string {
	switch {
	case name != "" && email != "":
		return name + " <" + email + ">"
	case name != "":
		return name
	case email != "":
		return "<" + email + ">"
	}
	return "?"
}

// fromCapture: capture dead-lettered it (an undecodable or too large
// row), so it is no event ticketer may turn into a ticket.
func (e *DeadLetterEntry) fromCapture() bool {
	return e.dl.DeadLetteredBy == "capture" || e.Subject == stream.DLQCapture
}

func captureSkipped(n int) string {
	return fmt.Sprintf("%d capture dead letter(s) skipped: fix the row in the database, then `capture backfill`", n)
}

// dlqStream opens FORMS_DLQ.
func dlqStream(ctx context.Context, js jetstream.JetStream) (jetstream.Stream, error) {
	st, err := js.Stream(ctx, stream.DLQ)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", stream.DLQ, err)
	}
	return st, nil
}

// listDeadLetters reads every entry of FORMS_DLQ, oldest first.
func listDeadLetters(ctx context.Context, st jetstream.Stream) ([]*DeadLetterEntry, error) {
	var out []*DeadLetterEntry
	err := readStream(ctx, st, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}, func(m jetstream.Msg) bool {
		md, err := m.Metadata()
		if err != nil {
			return true
		}
		out = append(out, newEntry(md.Sequence.Stream, md.Timestamp, m.Subject(), m.Headers(), m.Data()))
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", stream.DLQ, err)
	}
	return out, nil
}

// getDeadLetter reads one entry; (nil, nil) when there is none at seq.
func getDeadLetter(ctx context.Context, st jetstream.Stream, seq uint64) (*DeadLetterEntry, error) {
	m, err := st.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s seq %d: %w", stream.DLQ, seq, err)
	}
	return newEntry(m.Sequence, m.Time, m.Subject, m.Header, m.Data), nil
}

// runDLQ is `ticketer dlq list|show|replay`.
func runDLQ(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 {
		fmt.Fprintln(env.Stderr, "usage: ticketer dlq list [--json] | dlq show SEQ | dlq replay SEQ… | dlq replay --all")
		return errUsage
	}
	switch args[0] {
	case "list":
		return dlqList(ctx, env, args[1:])
	case "show":
		return dlqShow(ctx, env, args[1:])
	case "replay":
		return dlqReplay(ctx, env, args[1:])
	}
	fmt.Fprintf(env.Stderr, "ticketer dlq: unknown subcommand %q (want list, show or replay)\n", args[0])
	return errUsage
}

func dlqList(ctx context.Context, env *Env, args []string) error {
	fs := flag.NewFlagSet("dlq list", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	asJSON := fs.Bool("json", false, "print JSON, one array of entries")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return errUsage
	}
	nc, js, err := env.Connect(ctx, nats.MaxReconnects(2))
	if err != nil {
		return err
	}
	defer nc.Close()
	st, err := dlqStream(ctx, js)
	if err != nil {
		return err
	}
	entries, err := listDeadLetters(ctx, st)
	if err != nil {
		return err
	}
	if *asJSON {
		if entries == nil {
			entries = []*DeadLetterEntry{}
		}
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(entries)
	}
	printEntries(env.Stdout, entries)
	return nil
}

// listReasonWidth bounds the reason in the one-line listing (dlq show
// prints it whole).
const listReasonWidth = 200

func printEntries(w io.Writer, entries []*DeadLetterEntry) {
	if len(entries) == 0 {
		fmt.Fprintf(w, "%s is empty: nothing is dead-lettered\n", stream.DLQ)
		return
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tWHEN (UTC)\tHASH\tNAME\tEMAIL\tATTEMPTS\tREASON")
	for _, e := range entries {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\n", e.Seq, e.Time.Format("2006-01-02 15:04:05"), shortHash(e.Hash),
			cmpOr(e.Name, "-"), cmpOr(e.Email, "-"), e.Attempts, truncate(e.ReasonText, listReasonWidth))
	}
	tw.Flush()
	fmt.Fprintf(w, "%d dead letter(s); details: ticketer dlq show SEQ\n", len(entries))
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func parseSeq(s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("want a stream sequence (a positive number), got %q", s)
	}
	return n, nil
}

func dlqShow(ctx context.Context, env *Env, args []string) error {
	if len(args) != 1 {
		fmt.Fprintln(env.Stderr, "usage: ticketer dlq show SEQ")
		return errUsage
	}
	seq, err := parseSeq(args[0])
	if err != nil {
		return fmt.Errorf("dlq show: %w", err)
	}
	nc, js, err := env.Connect(ctx, nats.MaxReconnects(2))
	if err != nil {
		return err
	}
	defer nc.Close()
	st, err := dlqStream(ctx, js)
	if err != nil {
		return err
	}
	e, err := getDeadLetter(ctx, st, seq)
	if err != nil {
		return err
	}
	if e == nil {
		return fmt.Errorf("dlq show: no dead letter at %s seq %d (replayed or removed?)", stream.DLQ, seq)
	}
	w := env.Stdout
	fmt.Fprintf(w, "Dead letter %d of %s (subject %s), stored %s\n", e.Seq, stream.DLQ, e.Subject, e.Time.Format(time.RFC3339))
	fmt.Fprintf(w, "Request:  %s, hash %s\n", who(e.Name, e.Email), e.Hash)
	fmt.Fprintf(w, "Reason:   %s\n", reasonTitles[e.Reason]+" ("+cmpOr(e.Reason, "?")+")")
	if len(e.FieldErrors) > 0 {
		fmt.Fprintln(w, "Fields:")
		for _, fe := range e.FieldErrors {
			fmt.Fprintf(w, "  - %s\n", fe)
		}
	}
	if e.Error != "" {
		fmt.Fprintf(w, "Error:    %s\n", e.Error)
	}
	fmt.Fprintf(w, "Attempts: %d", e.Attempts)
	if !e.FirstFailure.IsZero() {
		fmt.Fprintf(w, ", first failure %s, last %s", e.FirstFailure.UTC().Format(time.RFC3339), e.LastFailure.UTC().Format(time.RFC3339))
	}
	fmt.Fprintln(w)
	if e.OrigStream != "" {
		fmt.Fprintf(w, "Original: %s seq %d\n", e.OrigStream, e.OrigSeq)
	}
	if e.Hash != "" {
		if kv, err := js.KeyValue(ctx, stream.TicketsBucket); err == nil {
			switch r, _, err := (Records{KV: kv}).Get(ctx, e.Hash); {
			case err != nil:
				fmt.Fprintf(w, "Ticket:   (record unreadable: %v)\n", err)
			case r == nil:
				fmt.Fprintln(w, "Ticket:   none recorded")
			case r.State == StateCreated:
				fmt.Fprintf(w, "Ticket:   %s already exists (replaying removes this entry without creating another)\n", r.Key)
			default:
				fmt.Fprintf(w, "Ticket:   claimed at %s, outcome unknown (attempt %d)\n", r.ClaimedAt.UTC().Format(time.RFC3339), r.Attempt)
			}
		}
	}
	fmt.Fprintln(w, "\nHeaders:")
	keys := make([]string, 0, len(e.header))
	for k := range e.header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range e.header[k] {
			fmt.Fprintf(w, "  %s: %s\n", k, v)
		}
	}
	fmt.Fprintln(w, "\nEvent:")
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, e.data, "  ", "  "); err != nil {
		fmt.Fprintf(w, "  (not JSON: %v)\n  %q\n", err, e.data)
	} else {
		fmt.Fprintf(w, "  %s\n", pretty.String())
	}
	return nil
}

func dlqReplay(ctx context.Context, env *Env, args []string) error {
	fs := flag.NewFlagSet("dlq replay", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	all := fs.Bool("all", false, "replay every dead letter")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *all == (fs.NArg() > 0) {
		fmt.Fprintln(env.Stderr, "usage: ticketer dlq replay SEQ… | ticketer dlq replay --all")
		return errUsage
	}
	var seqs []uint64
	for _, a := range fs.Args() {
		seq, err := parseSeq(a)
		if err != nil {
			return fmt.Errorf("dlq replay: %w", err)
		}
		seqs = append(seqs, seq)
	}
	r, err := newReplayer(ctx, env)
	if err != nil {
		return err
	}
	defer r.close()
	st, err := dlqStream(ctx, r.js)
	if err != nil {
		return err
	}
	var entries []*DeadLetterEntry
	missing := 0
	if *all {
		if entries, err = listDeadLetters(ctx, st); err != nil {
			return err
		}
	} else {
		for _, seq := range seqs {
			e, err := getDeadLetter(ctx, st, seq)
			if err != nil {
				return err
			}
			if e == nil {
				missing++
				fmt.Fprintf(env.Stdout, "DLQ %d: no such dead letter (already replayed or removed)\n", seq)
				continue
			}
			entries = append(entries, e)
		}
	}
	if len(entries) == 0 && missing == 0 {
		fmt.Fprintf(env.Stdout, "%s is empty: nothing to replay\n", stream.DLQ)
		return nil
	}
	// capture's dead letters are rows it could not turn into an event (or
	// whose event was too large): their values may be truncated, so a
	// ticket must never be made from them. The row is fixed at the source.
	var ours []*DeadLetterEntry
	fromCapture := 0
	for _, e := range entries {
		if !e.fromCapture() {
			ours = append(ours, e)
			continue
		}
		fromCapture++
		fmt.Fprintf(env.Stdout, "DLQ %d (hash %s, %s): dead-lettered by capture (%s), not replayed\n",
			e.Seq, shortHash(e.Hash), who(e.Name, e.Email), cmpOr(e.Reason, "?"))
	}
	res, err := r.replayDeadLetters(ctx, st, ours)
	fmt.Fprintf(env.Stdout, "dlq replay: %d replayed: %d created, %d skipped (already ticketed), %d still failing (kept in %s)\n",
		res.Replayed, res.Created, res.Skipped, res.Failing, stream.DLQ)
	if fromCapture > 0 {
		fmt.Fprintf(env.Stdout, "%s\n", captureSkipped(fromCapture))
	}
	if err != nil {
		return err
	}
	if fromCapture > 0 && !*all {
		return fmt.Errorf("dlq replay: %s", captureSkipped(fromCapture))
	}
	if missing > 0 {
		return fmt.Errorf("dlq replay: %d sequence(s) not found", missing)
	}
	if res.Failing > 0 {
		return fmt.Errorf("dlq replay: %d still failing; see ticketer dlq list", res.Failing)
	}
	return nil
}
