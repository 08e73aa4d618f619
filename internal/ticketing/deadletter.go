package ticketing

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sethvargo/go-retry"

	"github.com/cowjacket/formjira/internal/stream"
)

// deadLetter publishes w to FORMS_DLQ and resolves it; if the publish is
// not acknowledged, w stays for redelivery (the original is never dropped).
func (p *Engine) deadLetter(ctx context.Context, w *work, reason string, cause error, fieldErrs []string) {
	now := time.Now()
	dl := &stream.DeadLetter{
		Reason:         reason,
		Error:          cause.Error(),
		FieldErrors:    fieldErrs,
		Attempts:       max(w.failures(), 1),
		OrigStream:     w.it.Stream,
		OrigSeq:        w.it.Seq,
		OrigSubject:    w.it.Subject,
		Hash:           w.hash,
		FirstFailure:   cmpFirst(w.firstFail, now),
		LastFailure:    now,
		DeadLetteredBy: "ticketer",
	}
	class := map[string]string{stream.ReasonJiraRejected: "rejected", stream.ReasonExhausted: "transient",
		stream.ReasonPermission: "permission", stream.ReasonUndecodable: "undecodable"}[reason]
	if class == "" {
		class = "unmappable"
	}
	p.metrics.failed(class)
	if w.it.NoDeadLetter {
		w.out = &Outcome{Status: StatusRejected, Err: cause, DeadLetter: dl}
		return
	}
	// Keep trying within this delivery: this is the event's last chance
	// under MAX_DELIVER, and leaving it for a redelivery would only come back
	// here. Only shutdown stops the retries.
	var ack *jetstream.PubAck
	attempt := 0
	backoff := retry.WithCappedDuration(5*time.Second, retry.WithJitterPercent(20, retry.NewExponential(200*time.Millisecond)))
	err := retry.Do(ctx, backoff, func(ctx context.Context) error {
		attempt++
		if w.it.KeepAlive != nil {
			w.it.KeepAlive()
		}
		// A publish already sent is not abandoned half-way by shutdown.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		a, err := p.cfg.DeadLetters.PublishMsg(pctx, dl.Msg(stream.DLQTicketer, w.it.Data))
		if err != nil {
			p.log.Warn("dead-letter publish failed; retrying", "hash", w.hash, "stream_seq", w.it.Seq, "attempt", attempt, "err", err)
			return retry.RetryableError(err)
		}
		ack = a
		return nil
	})
	if err != nil {
		p.log.Error("dead-letter publish abandoned at shutdown; the event stays in FORMS (redelivered, or `ticketer replay --from-seq` it)",
			"hash", w.hash, "stream_seq", w.it.Seq, "reason", reason, "err", err)
		w.lastErr = fmt.Errorf("dead-letter publish: %w", err)
		w.out = &Outcome{Status: StatusRetry, Err: w.lastErr, RetryIn: 5 * time.Second}
		return
	}
	w.out = &Outcome{Status: StatusDeadLettered, Err: cause, DeadLetter: dl, DLQSeq: ack.Sequence}
	// Counted (and reported by the service) again: the delivery that first
	// stored it may have crashed before it counted anything; twice rather
	// than never.
	p.metrics.deadLettered(reason)
	if ack.Duplicate {
		// Dead-lettered before, the message not settled (a crash, a lost
		// Term): the one entry stands.
		p.log.Warn("event already dead-lettered; its entry stands", "hash", w.hash, "stream_seq", w.it.Seq, "reason", reason, "dlq_seq", ack.Sequence)
		return
	}
	p.log.Error("event dead-lettered", "hash", w.hash, "stream_seq", w.it.Seq, "reason", reason,
		"error", cause.Error(), "field_errors", strings.Join(fieldErrs, " | "), "dlq_seq", ack.Sequence, "attempt", dl.Attempts)
}

// failures is how many of w's deliveries failed (counted in its record), or
// this one.
func (w *work) failures() int {
	if w.rec != nil && w.rec.Failures > 0 {
		return w.rec.Failures
	}
	return 1
}
