package ticketing

import (
	"context"
	"time"

	"github.com/cowjacket/formjira/internal/stream"
)

// Item is one event to turn into a ticket: a message of FORMS, or a dead
// letter being replayed.
type Item struct {
	Data    []byte // the event as stored (protojson)
	Subject string // original subject
	Stream  string // original stream, normally FORMS
	Seq     uint64 // original stream sequence
	// Delivery is the 1-based delivery count, for the logs. What dead-letters
	// an event is the count of its failures (Config.MaxFailures), not of its
	// deliveries, which outages and restarts also use up.
	Delivery int
	// Force creates a ticket even when one is recorded (replay --force).
	Force bool
	// NoDeadLetter reports permanent failures (StatusRejected) instead of
	// publishing them to FORMS_DLQ, for re-driving dead letters.
	NoDeadLetter bool
	// KeepAlive, if set, is called periodically while the item waits
	// (msg.InProgress), so a long retry does not trigger redelivery.
	KeepAlive func()
}

// Status is an item's outcome.
type Status int

const (
	StatusRetry        Status = iota // transient failure: leave for redelivery (Nak with RetryIn)
	StatusCreated                    // a ticket was created (Key)
	StatusSkipped                    // a ticket already existed (Key), or an in-batch duplicate (Outcome.Duplicate)
	StatusDeadLettered               // published to FORMS_DLQ (DLQSeq): terminate the original
	StatusRejected                   // permanent failure, not published (Item.NoDeadLetter)
	StatusAuth                       // Jira refused the credentials or a permission: stop consuming
	StatusHeld                       // Jira is down (circuit open): keep the message, try again when it is back; no failure counted
)

func (s Status) String() string {
	return [...]string{"retry", "created", "skipped", "dead_lettered", "rejected", "auth_failed", "held"}[s]
}

// Outcome is what became of an item.
type Outcome struct {
	Hash       string // the event's record hash, from its body ("" if undecodable)
	Status     Status
	Key        string
	Err        error
	RetryIn    time.Duration      // StatusRetry: when to try again
	DeadLetter *stream.DeadLetter // StatusDeadLettered / StatusRejected
	DLQSeq     uint64
	// Duplicate: the same request earlier in the batch; StatusSkipped, Key
	// its ticket, "" when that one has none (failed, or to be retried).
	Duplicate bool
}

// softStopKey carries a channel: once closed, Process stops retrying (but
// finishes the request in flight), used for graceful shutdown.
type softStopKey struct{}

// WithSoftStop makes Process stop retrying once stop is closed, while ctx
// still governs requests in flight.
func WithSoftStop(ctx context.Context, stop <-chan struct{}) context.Context {
	return context.WithValue(ctx, softStopKey{}, stop)
}

func softStop(ctx context.Context) <-chan struct{} {
	ch, _ := ctx.Value(softStopKey{}).(<-chan struct{})
	return ch
}
