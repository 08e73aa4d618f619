package ticketer

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/config"
	"github.com/cowjacket/formjira/internal/customers"
	"github.com/cowjacket/formjira/internal/jira"
	"github.com/cowjacket/formjira/internal/labeledit"
	"github.com/cowjacket/formjira/internal/mapping"
	"github.com/cowjacket/formjira/internal/natsconn"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/ticketing"
)

// The adapters the engine is wired with.
var (
	_ ticketing.Jira      = (*jira.Client)(nil)
	_ ticketing.Pacer     = (*jira.Pacer)(nil)
	_ ticketing.Records   = stream.Tickets{}
	_ labeledit.Jobs      = stream.Tickets{}
	_ ticketing.Publisher = jetstream.JetStream(nil)
)

// LoadMapping reads MAPPING_FILE.
func (c *Config) LoadMapping() (*mapping.Mapping, error) {
	m, err := mapping.Load(c.MappingFile)
	if err != nil {
		return nil, fmt.Errorf("MAPPING_FILE: %w", err)
	}
	// Data Center (the PAT) names users by username, where ticketer sends
	// Cloud's accountIds: every request with a requester would fail.
	if c.JiraPAT != "" && m.HasRequester() {
		return nil, config.Errorf("MAPPING_FILE", "requester is not supported with JIRA_PAT: Jira Data Center names users by username, and ticketer sends "+
			"Jira Cloud accountIds (raiseOnBehalfOf, reporter); remove requester (and reporter: requester) from %s", c.MappingFile)
	}
	return m, nil
}

// JiraClient is a client for the mapping's API version, with the
// configuration's site, credentials and timeout. hooks may set the Pacer
// (nil: a private one at JIRA_RATE), Observe, Gate and Result.
func (c *Config) JiraClient(m *mapping.Mapping, hooks jira.Options) (*jira.Client, error) {
	if err := c.RequireJira(); err != nil {
		return nil, err
	}
	o := hooks
	if o.Pacer == nil {
		o.Pacer = jira.NewPacer(c.JiraRate)
	}
	o.URL, o.Email, o.APIToken, o.PAT, o.CAFile = c.JiraURL, c.JiraEmail, c.JiraAPIToken, c.JiraPAT, c.JiraCAFile
	o.APIVersion, o.Timeout = m.APIVersion(), c.JiraTimeout
	jc, err := jira.New(o)
	if err != nil {
		return nil, fmt.Errorf("JIRA_URL: %w", err)
	}
	return jc, nil
}

// Connect opens NATS and JetStream for the service, its replies under
// ticketer's inbox prefix; commands pass CommandNATS.
func (c *Config) Connect(ctx context.Context, log *slog.Logger, opts ...nats.Option) (*nats.Conn, jetstream.JetStream, error) {
	opts = append([]nats.Option{nats.CustomInboxPrefix(natsconn.TicketerInbox)}, opts...)
	return natsconn.JetStream(ctx, c.NATS, "ticketer", log, opts...)
}

// Engine builds the exactly-once engine over FORMS_TICKETS and FORMS_DLQ,
// with the service's rules, for the service and the replay commands.
func (c *Config) Engine(js jetstream.JetStream, tickets stream.Tickets, m *mapping.Mapping, jc ticketing.Jira, pacer ticketing.Pacer,
	health ticketing.Health, requesters ticketing.Requesters, metrics *ticketing.Metrics, log *slog.Logger) (*ticketing.Engine, error) {
	return ticketing.New(ticketing.Config{
		Jira: jc, Mapping: m, Records: tickets, LabelJobs: tickets, DeadLetters: js, Requesters: requesters,
		Log: log, Metrics: metrics, Pacer: pacer, Health: health,
		BatchSize: c.BatchSize, Concurrency: c.Concurrency,
		ReconcileDelay: c.ReconcileDelay, JiraTimeout: c.JiraTimeout, RetryWindow: c.RetryWindow, MaxFailures: c.MaxDeliver,
		KeepAliveEvery: c.keepAliveEvery(),
	})
}

// Requesters is the resolver of requester accounts when the mapping names
// a requester (nil otherwise), over the cache in FORMS_CUSTOMERS: created or
// updated by the service (ensure), looked up by commands.
func (c *Config) Requesters(ctx context.Context, js jetstream.JetStream, m *mapping.Mapping, jc *jira.Client, ensure bool, log *slog.Logger) (ticketing.Requesters, error) {
	if !m.HasRequester() {
		return nil, nil
	}
	desk, _ := m.ServiceDesk()
	if !ensure {
		// Commands only look the cache up; without it they still resolve.
		if cache, err := stream.LookupCustomers(ctx, js); err == nil {
			return customers.New(jc, cache, desk, log), nil
		}
		return customers.New(jc, nil, desk, log), nil
	}
	cache, err := stream.EnsureCustomers(ctx, js, c.Streams)
	if err != nil {
		return nil, err
	}
	return customers.New(jc, cache, desk, log), nil
}

// ConsumerConfig is the durable consumer with this configuration's
// ACK_WAIT, BACKOFF and MAX_ACK_PENDING.
func (c *Config) ConsumerConfig() jetstream.ConsumerConfig {
	return stream.TicketerConsumerConfig(stream.ConsumerSettings{AckWait: c.AckWait, Backoff: c.Backoff, MaxAckPending: c.MaxAckPending})
}
