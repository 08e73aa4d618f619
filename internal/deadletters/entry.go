// Package deadletters is the read model of stream FORMS_DLQ that the CLI
// and the console share: each dead letter with its request (name, e-mail,
// hash), the reason in words and the fields Jira or the mapping refused.
package deadletters

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cowjacket/formjira/internal/form"
	"github.com/cowjacket/formjira/internal/stream"
)

// Columns of the form that identify the requester in listings.
const (
	NameColumn  = "newusername"
	EmailColumn = "emailaddress"
)

// Entry is one message of FORMS_DLQ as `dlq list --json` and the console
// show it.
type Entry struct {
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

	// DeadLetter is the parsed headers; Data the original event as
	// captured; Header every header, for `dlq show`.
	DeadLetter stream.DeadLetter `json:"-"`
	Data       []byte            `json:"-"`
	Header     nats.Header       `json:"-"`
}

// NewEntry reads one FORMS_DLQ message.
func NewEntry(seq uint64, at time.Time, subject string, h nats.Header, data []byte) *Entry {
	dl := stream.ParseDeadLetter(h)
	e := &Entry{
		Seq: seq, Time: at.UTC(), Subject: subject, Hash: dl.Hash, Attempts: dl.Attempts,
		Reason: dl.Reason, ReasonText: ReasonText(dl), Error: dl.Error, FieldErrors: dl.FieldErrors,
		OrigStream: dl.OrigStream, OrigSeq: dl.OrigSeq, FirstFailure: dl.FirstFailure, LastFailure: dl.LastFailure,
		DeadLetter: dl, Data: data, Header: h,
	}
	if ev, err := stream.Unmarshal(data); err == nil {
		e.Name, e.Email = form.String(ev, NameColumn), form.String(ev, EmailColumn)
		if e.Hash == "" {
			e.Hash = ev.GetHash()
		}
	}
	return e
}

// ReasonTitles put the reason codes in words.
var ReasonTitles = map[string]string{
	stream.ReasonJiraRejected: "Jira refused the ticket",
	stream.ReasonUnmappable:   "the row cannot be mapped to Jira's fields",
	stream.ReasonExhausted:    "Jira kept failing; gave up",
	stream.ReasonPermission:   "Jira refuses a permission the ticket needs",
	stream.ReasonUndecodable:  "the row or event cannot be decoded",
	stream.ReasonTooLarge:     "the event is too large for the stream",
}

// ReasonText is the reason in words: the category, then Jira's (or the
// mapping's) complaint per field, each naming the field id and name.
func ReasonText(d stream.DeadLetter) string {
	title := ReasonTitles[d.Reason]
	if title == "" {
		title = cmp.Or(d.Reason, "unknown reason")
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

// fieldTarget pulls "customfield_10073 (Department)" out of a field error
// (mapping: `column "x" → id (Name): msg`; Jira: `id (Name): msg`).
var fieldTarget = regexp.MustCompile(`^(?:column "[^"]*" → )?([^:]+):`)

// ReasonKey groups dead letters for alert digests: the code and the
// fields involved, e.g. "unmappable: customfield_10073 (Department)".
func ReasonKey(d stream.DeadLetter) string {
	var fields []string
	for _, fe := range d.FieldErrors {
		if m := fieldTarget.FindStringSubmatch(fe); m != nil {
			fields = appendUnique(fields, strings.TrimSpace(m[1]))
		}
	}
	title := ReasonTitles[d.Reason]
	if title == "" {
		title = cmp.Or(d.Reason, "unknown reason")
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

// ShortHash is the first 12 digits of a hash, for listings.
func ShortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// Who is "Name <email>" of an entry, for listings and reports.
func Who(name, email string) string {
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

// FromCapture: capture dead-lettered it (an undecodable or too large
// row), so it is no event ticketer may turn into a ticket.
func (e *Entry) FromCapture() bool {
	return e.DeadLetter.DeadLetteredBy == "capture" || e.Subject == stream.DLQCapture
}

// CaptureSkipped says what to do about capture's dead letters.
func CaptureSkipped(n int) string {
	return fmt.Sprintf("%d capture dead letter(s) skipped: fix the row in the database, then `capture backfill`", n)
}
