package index

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/stream"
)

// Tailer indexes FORMS from the checkpoint on, as events arrive. Several
// ticketer replicas may run one each: the checkpoint moves by
// compare-and-set, and the postings are the same whoever writes them, so at
// worst two replicas index one chunk twice.
type Tailer struct {
	Index *Index
	Forms jetstream.Stream
	Log   *slog.Logger
	// Idle is the pause when FORMS has nothing new [1s]; Chunk the events
	// indexed per step [1000].
	Idle  time.Duration
	Chunk int
}

// Run indexes until ctx ends; failures are logged and retried.
func (t *Tailer) Run(ctx context.Context) {
	idle := t.Idle
	if idle <= 0 {
		idle = time.Second
	}
	failing := false
	for ctx.Err() == nil {
		start := time.Now()
		n, err := t.Step(ctx)
		// Indexing yields to tickets: after a chunk, rest as long as it
		// took (at most half the CPU and NATS time goes to the index, even
		// while a backlog or the history is indexed).
		if n > 0 && err == nil {
			select {
			case <-ctx.Done():
			case <-time.After(min(time.Since(start), time.Second)):
			}
		}
		switch {
		case err != nil && ctx.Err() == nil:
			if !failing {
				t.Log.Warn("request index (trace) behind: retrying", "err", err)
			}
			failing = true
		case err == nil:
			if failing {
				t.Log.Info("request index (trace) writing again")
			}
			failing = false
		}
		if n == 0 || err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(idle):
			}
		}
	}
}

// Step indexes the next chunk after the checkpoint and returns how many
// events it indexed.
func (t *Tailer) Step(ctx context.Context) (int, error) {
	cp, rev, err := t.Index.Checkpoint(ctx)
	if err != nil {
		return 0, err
	}
	info, err := t.Forms.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", stream.Forms, err)
	}
	if info.State.Msgs == 0 || info.State.LastSeq <= cp {
		return 0, nil
	}
	chunk := t.Chunk
	if chunk <= 0 {
		chunk = 1000
	}
	start := max(cp+1, info.State.FirstSeq)
	kvs := map[string][]byte{}
	last, n := cp, 0
	err = stream.ReadAll(ctx, t.Forms, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: start},
		func(m jetstream.Msg) bool {
			md, err := m.Metadata()
			if err != nil {
				return true
			}
			last = md.Sequence.Stream
			n++
			if ev, err := stream.Unmarshal(m.Data()); err == nil {
				for k, v := range Postings(last, m.Subject(), md.Timestamp, ev) {
					kvs[k] = v
				}
			}
			return n < chunk
		})
	if err != nil {
		return 0, fmt.Errorf("read %s from %d: %w", stream.Forms, start, err)
	}
	if n == 0 {
		return 0, nil
	}
	if err := t.Index.Put(ctx, kvs); err != nil {
		return 0, err
	}
	if _, err := t.Index.SetCheckpoint(ctx, last, rev); err != nil {
		return 0, err
	}
	return n, nil
}
