package ticketer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/index"
	"github.com/cowjacket/formjira/internal/jira"
	"github.com/cowjacket/formjira/internal/natsconn"
	"github.com/cowjacket/formjira/internal/replay"
	"github.com/cowjacket/formjira/internal/stats"
	"github.com/cowjacket/formjira/internal/stream"
)

// Replayer is a replay.Replayer wired like the service (mapping, Jira
// client, engine, idempotency records, daily counters, request index) for
// one replay command or console action. Every one fetches Jira's field
// metadata afresh, so a mapping or a Jira option fixed since the failure
// takes effect.
type Replayer struct {
	*replay.Replayer
	js    jetstream.JetStream
	log   *slog.Logger
	index *index.Recorder
	stop  context.CancelFunc
	done  chan struct{}
}

// NewReplayer builds a replayer over js (which the caller keeps open).
func (c *Config) NewReplayer(ctx context.Context, js jetstream.JetStream, log *slog.Logger) (*Replayer, error) {
	if err := c.RequireJira(); err != nil {
		return nil, err
	}
	m, err := c.LoadMapping()
	if err != nil {
		return nil, err
	}
	jc, err := c.JiraClient(m, jira.Options{})
	if err != nil {
		return nil, err
	}
	// Commands only look up what the service owns.
	tickets, err := stream.LookupTickets(ctx, js)
	if err != nil {
		return nil, err
	}
	if _, err := js.Stream(ctx, stream.DLQ); err != nil {
		return nil, fmt.Errorf("stream %s: %w", stream.DLQ, err)
	}
	requesters, err := c.Requesters(ctx, js, m, jc, false, log)
	if err != nil {
		return nil, err
	}
	engine, err := c.Engine(js, tickets, m, jc, nil, nil, requesters, nil, log)
	if err != nil {
		return nil, err
	}
	// A fresh look at Jira, now: fails early (and clearly) on bad
	// credentials.
	engine.InvalidateMeta()
	if _, err := engine.Meta(ctx); err != nil {
		if errors.Is(err, jira.ErrAuth) {
			return nil, fmt.Errorf("Jira refuses the credentials (JIRA_EMAIL/JIRA_API_TOKEN or JIRA_PAT): %w", err)
		}
		return nil, err
	}
	r := &Replayer{Replayer: &replay.Replayer{Engine: engine, JS: js, BatchSize: c.BatchSize}, js: js, log: log, done: make(chan struct{})}
	if _, err := js.Stream(ctx, stream.Stats); err == nil {
		r.Stats = stats.NewRecorder(js, log)
	} else {
		log.Warn("daily counters unavailable; replay not counted in stats", "err", err)
	}
	var rctx context.Context
	rctx, r.stop = context.WithCancel(context.WithoutCancel(ctx))
	if kv, err := stream.LookupIndex(ctx, js); err == nil {
		r.index = index.NewRecorder(&index.Index{KV: kv}, log, 1024)
		r.Index = r.index
		go func() { defer close(r.done); r.index.Run(rctx) }()
	} else {
		close(r.done)
		log.Debug("request index unavailable; trace will not show this replay", "err", err)
	}
	return r, nil
}

// Close saves the counts and the index entries of what was replayed.
func (r *Replayer) Close() {
	fctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := r.Stats.Flush(fctx); err != nil {
		r.log.Warn("the replay's counts were not added to the daily counters (ticketer stats)", "err", err)
	}
	r.index.Flush(fctx)
	r.stop()
	<-r.done
}

// CommandNATS are an operator command's NATS options (the console's too):
// replies under the operators' inbox prefix; give up reconnecting soon.
var CommandNATS = []nats.Option{nats.CustomInboxPrefix(natsconn.OperatorInbox), nats.MaxReconnects(5)}
