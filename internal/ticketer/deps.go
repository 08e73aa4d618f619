package ticketer

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/jira"
	"github.com/cowjacket/formjira/internal/mapping"
	"github.com/cowjacket/formjira/internal/stream"
)

// Mapping loads MAPPING_FILE.
func (e *Env) Mapping() (*mapping.Mapping, error) {
	m, err := mapping.Load(e.Config.MappingFile)
	if err != nil {
		return nil, fmt.Errorf("MAPPING_FILE: %w", err)
	}
	return m, nil
}

// Jira is a client for the mapping's API version, pacing with pacer (nil:
// a private one at JIRA_RATE).
func (e *Env) Jira(m *mapping.Mapping, pacer *jira.Pacer, metrics *Metrics) (*jira.Client, error) {
	if err := e.Config.RequireJira(); err != nil {
		return nil, err
	}
	if pacer == nil {
		pacer = jira.NewPacer(e.Config.JiraRate)
	}
	c, err := jira.New(jira.Options{
		URL: e.Config.JiraURL, Email: e.Config.JiraEmail, APIToken: e.Config.JiraAPIToken, PAT: e.Config.JiraPAT,
		APIVersion: m.APIVersion(), Timeout: e.Config.JiraTimeout, Pacer: pacer, Observe: metrics.observeJira,
	})
	if err != nil {
		return nil, fmt.Errorf("JIRA_URL: %w", err)
	}
	return c, nil
}

// Connect opens NATS and JetStream.
func (e *Env) Connect(ctx context.Context, opts ...nats.Option) (*nats.Conn, jetstream.JetStream, error) {
	log := e.Log
	opts = append([]nats.Option{
		nats.Name("ticketer"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("nats reconnected", "url", c.ConnectedUrlRedacted()) }),
	}, opts...)
	nc, err := nats.Connect(e.Config.NATS.URL, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("NATS_URL: connect: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return nc, js, nil
}

// waitForNATS are the service's extra connection options: when no server
// answers at start, connect in the background (for ever) rather than fail,
// so a ticketer started before NATS waits for it, unready.
func waitForNATS(log *slog.Logger) []nats.Option {
	return []nats.Option{
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		nats.ConnectHandler(func(c *nats.Conn) { log.Info("nats connected", "url", c.ConnectedUrlRedacted()) }),
	}
}

// StreamConfig is the stream layout ticketer creates when missing.
func (e *Env) StreamConfig() stream.Config { return e.Config.Streams }

// NewProcessor builds the processor the service uses, for commands that
// re-drive events (dlq replay, replay): same mapping, client and rules.
func (e *Env) NewProcessor(ctx context.Context, js jetstream.JetStream, m *mapping.Mapping, jc Jira, pacer *jira.Pacer, metrics *Metrics) (*Processor, error) {
	kv, err := stream.EnsureTickets(ctx, js, e.StreamConfig())
	if err != nil {
		return nil, err
	}
	if _, err := stream.EnsureDLQ(ctx, js, e.StreamConfig()); err != nil {
		return nil, err
	}
	c := e.Config
	return NewProcessor(ProcessorConfig{
		Jira: jc, Mapping: m, JS: js, KV: kv, Log: e.Log, Metrics: metrics, Pacer: pacer,
		BatchSize: c.BatchSize, Concurrency: c.Concurrency,
		ReconcileDelay: c.ReconcileDelay, JiraTimeout: c.JiraTimeout, RetryWindow: c.RetryWindow,
		KeepAliveEvery: max(min(c.AckWait, c.redelivery(1))/3, 100*time.Millisecond),
	})
}
