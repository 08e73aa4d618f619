// Package alert tells a human when the pipeline needs attention: dead
// letters, Jira refusing our credentials or being unreachable, capture
// stalling, a growing backlog. It replaces the cron script's admin e-mail
// with non-blocking, batched, rate-limited and retried delivery to e-mail
// and webhook sinks.
package alert

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Kind names what went wrong; storm control and digests work per kind.
type Kind string

// The kinds of alert the services raise.
const (
	// DeadLetter reports new dead letters; Summary is the reason (grouped in
	// the digest), Count how many.
	DeadLetter Kind = "dead_letter"
	// JiraAuth reports Jira answering 401/403: nothing will be created until
	// a human fixes the credentials.
	JiraAuth Kind = "jira_auth"
	// JiraUnreachable reports Jira not answering (network, 5xx) for too long.
	JiraUnreachable Kind = "jira_unreachable"
	// CaptureStalled reports capture not confirming LSNs or the slot
	// retaining more WAL than the threshold.
	CaptureStalled Kind = "capture_stalled"
	// BacklogGrowing reports the ticketer's consumer backlog growing.
	BacklogGrowing Kind = "backlog_growing"
)

// Title is the human headline for the kind, used when an Alert has no Summary.
func (k Kind) Title() string {
	switch k {
	case DeadLetter:
		return "dead letters"
	case JiraAuth:
		return "Jira authentication failing"
	case JiraUnreachable:
		return "Jira unreachable"
	case CaptureStalled:
		return "Capture stalled"
	case BacklogGrowing:
		return "Consumer backlog growing"
	default:
		return string(k)
	}
}

// Alert is one occurrence of a problem (or, with Resolved, its end).
type Alert struct {
	Kind Kind
	// Summary is a one-line headline; for DeadLetter it is the reason the
	// digest groups by. Empty means Kind.Title().
	Summary string
	// Detail is free text (an error message, a lag figure).
	Detail string
	// Count is how many occurrences this alert stands for; 0 means 1.
	Count int
	// At is when it happened; zero means when Notify was called.
	At time.Time
	// Fields are structured extras (hash, stream_seq, status) passed to
	// webhook sinks and listed in e-mails.
	Fields map[string]string
	// Resolved marks the end of a condition previously alerted on.
	Resolved bool
	// Elsewhere: the condition was announced by another sender (another
	// replica), so this RESOLVED is sent even though this one announced
	// nothing.
	Elsewhere bool
}

func (a Alert) headline() string {
	if a.Summary != "" {
		return a.Summary
	}
	return a.Kind.Title()
}

// DeadLettered is the alert for n events dead-lettered for reason.
func DeadLettered(reason, detail string, n int) Alert {
	return Alert{Kind: DeadLetter, Summary: reason, Detail: detail, Count: n}
}

// JiraAuthFailed is the alert for Jira answering status (401 or 403).
func JiraAuthFailed(status int, detail string) Alert {
	return Alert{
		Kind:    JiraAuth,
		Summary: fmt.Sprintf("Jira authentication failing (%d)", status),
		Detail:  detail,
		Fields:  map[string]string{"status": strconv.Itoa(status)},
	}
}

// Sink delivers one composed message. alerts are the occurrences it
// reports, for sinks that carry structure (webhooks). Send must honour ctx.
type Sink interface {
	Send(ctx context.Context, subject, body string, alerts []Alert) error
}

// ErrPermanent marks sink errors that retrying cannot fix (bad recipient,
// rejected credentials, missing STARTTLS); the Alerter gives up at once.
var ErrPermanent = errors.New("permanent failure")

type permanentError struct{ err error }

func (e permanentError) Error() string        { return e.err.Error() }
func (e permanentError) Unwrap() error        { return e.err }
func (e permanentError) Is(target error) bool { return target == ErrPermanent }

// Permanent wraps err so that errors.Is(err, ErrPermanent) holds; custom
// sinks use it to stop retries.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}
