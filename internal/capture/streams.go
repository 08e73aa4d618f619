package capture

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/pause"
	"github.com/cowjacket/formjira/internal/stream"
)

// streamMissing: JetStream has no stream for the subject (no responders) or
// says the stream is gone.
func streamMissing(err error) bool {
	var ae *jetstream.APIError
	return errors.Is(err, errNoStream) || errors.As(err, &ae) && ae.ErrorCode == jetstream.JSErrCodeStreamNotFound
}

// tooBigForForms: the stream refuses the message for its size
// (max_msg_size).
func tooBigForForms(err error) bool {
	var ae *jetstream.APIError
	return errors.As(err, &ae) && ae.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum
}

// restoreGap spaces the attempts to make the streams again.
const restoreGap = 5 * time.Second

// restoreStreams makes FORMS and FORMS_DLQ again when a publish finds one
// missing (an operator deleted it, or a server lost its JetStream state):
// the rows wait in the slot meanwhile, and flow once it is back, instead of
// waiting for capture's restart.
func restoreStreams(ctx context.Context, js jetstream.JetStream, sc stream.Config, missing <-chan struct{}, log *slog.Logger) {
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-missing:
		}
		if wait := restoreGap - time.Since(last); wait > 0 && !pause.For(ctx, wait) {
			return
		}
		last = time.Now()
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := stream.EnsureForms(sctx, js, sc)
		if err == nil {
			_, err = stream.EnsureDLQ(sctx, js, sc)
		}
		cancel()
		if err != nil {
			log.Warn("no JetStream stream takes the rows, and making it again failed; trying again", "err", err)
			continue
		}
		log.Warn("no JetStream stream took the rows (deleted, or lost by the server): streams " + stream.Forms + " and " + stream.DLQ +
			" made again; the rows waiting in the slot follow")
	}
}
