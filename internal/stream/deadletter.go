package stream

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Dead-letter headers. Readable with `nats stream get FORMS_DLQ SEQ`.
const (
	HeaderReason         = "Cowjacket-Reason"          // reason code, e.g. jira_rejected
	HeaderError          = "Cowjacket-Error"           // the reason in words, fields named
	HeaderFieldError     = "Cowjacket-Field-Error"     // one per Jira field: "customfield_10073 (Department): ..."
	HeaderAttempts       = "Cowjacket-Attempts"        // deliveries tried
	HeaderOrigStream     = "Cowjacket-Original-Stream" // FORMS
	HeaderOrigSeq        = "Cowjacket-Original-Seq"    // stream sequence in FORMS
	HeaderOrigSubject    = "Cowjacket-Original-Subject"
	HeaderFirstFailure   = "Cowjacket-First-Failure" // RFC 3339
	HeaderLastFailure    = "Cowjacket-Last-Failure"  // RFC 3339
	HeaderDeadLetteredBy = "Cowjacket-Dead-Lettered-By"
	// HeaderReplayedFrom is set on a dead letter that replaced an earlier
	// one after a replay that still failed: the earlier entry's sequence.
	HeaderReplayedFrom = "Cowjacket-Replayed-From"
)

// Reason codes: the category of a dead letter, for alerts and filters.
const (
	ReasonUnmappable   = "unmappable"      // the row cannot be mapped to Jira fields
	ReasonJiraRejected = "jira_rejected"   // Jira answered 400 with field errors
	ReasonExhausted    = "exhausted"       // transient failures used every attempt
	ReasonPermission   = "jira_permission" // Jira refuses a permission the ticket needs (creating the customer; raising for a non-customer)
	ReasonUndecodable  = "undecodable"     // capture could not decode a value / the event
	ReasonTooLarge     = "too_large"       // the event exceeds the server's max payload
)

// DeadLetter describes why an event is in FORMS_DLQ.
type DeadLetter struct {
	Reason         string   // one of the Reason* codes
	Error          string   // the reason in words
	FieldErrors    []string // Jira's per-field errors, "fieldId (Name): message"
	Attempts       int
	OrigStream     string
	OrigSeq        uint64
	OrigSubject    string
	Hash           string
	FirstFailure   time.Time
	LastFailure    time.Time
	DeadLetteredBy string // "capture" or "ticketer"
}

// MsgID makes re-publishing the same dead letter (a crash between the DLQ
// ack and terminating the original) collapse into one entry.
func (d DeadLetter) MsgID() string {
	if d.OrigStream != "" && d.OrigSeq > 0 {
		return fmt.Sprintf("dlq:%s:%d:%d", d.OrigStream, d.OrigSeq, d.Attempts)
	}
	return "dlq:" + d.Hash + ":" + strconv.FormatInt(d.LastFailure.UnixNano(), 10)
}

// Msg is the dead-letter message: the original body unchanged (so a replay
// re-drives exactly what was captured) with the reason in headers.
func (d DeadLetter) Msg(subject string, body []byte) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Data = body
	h := m.Header
	h.Set(HeaderContentType, ContentType)
	h.Set(nats.MsgIdHdr, d.MsgID())
	h.Set(HeaderReason, d.Reason)
	h.Set(HeaderError, oneLine(d.Error))
	for _, fe := range d.FieldErrors {
		h.Add(HeaderFieldError, oneLine(fe))
	}
	h.Set(HeaderAttempts, strconv.Itoa(d.Attempts))
	if d.OrigStream != "" {
		h.Set(HeaderOrigStream, d.OrigStream)
		h.Set(HeaderOrigSeq, strconv.FormatUint(d.OrigSeq, 10))
	}
	if d.OrigSubject != "" {
		h.Set(HeaderOrigSubject, d.OrigSubject)
	}
	if d.Hash != "" {
		h.Set(HeaderHash, d.Hash)
	}
	if !d.FirstFailure.IsZero() {
		h.Set(HeaderFirstFailure, d.FirstFailure.UTC().Format(time.RFC3339Nano))
	}
	if !d.LastFailure.IsZero() {
		h.Set(HeaderLastFailure, d.LastFailure.UTC().Format(time.RFC3339Nano))
	}
	if d.DeadLetteredBy != "" {
		h.Set(HeaderDeadLetteredBy, d.DeadLetteredBy)
	}
	return m
}

// ParseDeadLetter reads the headers Msg wrote.
func ParseDeadLetter(h nats.Header) DeadLetter {
	d := DeadLetter{
		Reason:         h.Get(HeaderReason),
		Error:          h.Get(HeaderError),
		FieldErrors:    h.Values(HeaderFieldError),
		OrigStream:     h.Get(HeaderOrigStream),
		OrigSubject:    h.Get(HeaderOrigSubject),
		Hash:           h.Get(HeaderHash),
		DeadLetteredBy: h.Get(HeaderDeadLetteredBy),
	}
	d.Attempts, _ = strconv.Atoi(h.Get(HeaderAttempts))
	d.OrigSeq, _ = strconv.ParseUint(h.Get(HeaderOrigSeq), 10, 64)
	d.FirstFailure, _ = time.Parse(time.RFC3339Nano, h.Get(HeaderFirstFailure))
	d.LastFailure, _ = time.Parse(time.RFC3339Nano, h.Get(HeaderLastFailure))
	return d
}

// Header values cannot hold line breaks.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\r", " ")), " ")
}
