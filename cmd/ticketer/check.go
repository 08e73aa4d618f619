package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/cli"
	"github.com/cowjacket/formjira/internal/jira"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/ticketer"
	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

// checkSampleLimit bounds how many recent events of FORMS check reads.
const checkSampleLimit = 5000

// checkCommand validates the mapping against Jira's fields and the events
// already in FORMS (when NATS is reachable), prints the mapped table and
// fails naming every problem.
var checkCommand = cli.Command{
	Name:    "check",
	Summary: "validate the mapping against Jira's fields and the events in FORMS",
	Run:     runCheck,
}

func runCheck(ctx context.Context, env cli.Env, args []string) error {
	if err := cli.NoArgs("check", args); err != nil {
		return err
	}
	cfg, log, err := load(env)
	if err != nil {
		return err
	}
	if err := cfg.RequireJira(); err != nil {
		return err
	}
	m, err := cfg.LoadMapping()
	if err != nil {
		return err
	}
	jc, err := cfg.JiraClient(m, jira.Options{})
	if err != nil {
		return err
	}
	meta, err := jc.Meta(ctx, m.Target())
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	samples, note := checkSamples(ctx, cfg, log)
	fmt.Fprintln(env.Stdout, note)
	table, problems, warnings := m.Check(meta, samples)
	fmt.Fprintln(env.Stdout, table)
	for _, w := range warnings {
		fmt.Fprintln(env.Stdout, "warning:", w)
	}
	if len(problems) == 0 {
		fmt.Fprintln(env.Stdout, "OK: the mapping matches Jira")
		return nil
	}
	fmt.Fprintf(env.Stdout, "%d problem(s):\n", len(problems))
	for _, p := range problems {
		fmt.Fprintln(env.Stdout, "  -", p)
	}
	return fmt.Errorf("check: %d problem(s); the first: %s", len(problems), problems[0])
}

// checkSamples reads up to checkSampleLimit recent events from FORMS. An
// unreachable NATS is no error: the mapping is then checked alone.
func checkSamples(ctx context.Context, cfg *ticketer.Config, log *slog.Logger) ([]*formsv1.FormSubmission, string) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// An operator command: replies under the operators' inbox prefix.
	opts := append(slices.Clone(ticketer.CommandNATS), nats.Timeout(2*time.Second), nats.MaxReconnects(0))
	nc, js, err := cfg.Connect(ctx, log, opts...)
	if err != nil {
		return nil, "stream FORMS not reachable (" + cli.OneLine(err.Error()) + "): checking the mapping without events (column names are checked once FORMS holds events)"
	}
	defer nc.Close()
	st, err := js.Stream(ctx, stream.Forms)
	if err != nil {
		return nil, "stream FORMS not found: checking the mapping without events (column names are checked once FORMS holds events)"
	}
	info, err := st.Info(ctx)
	if err != nil || info.State.Msgs == 0 {
		return nil, "stream FORMS is empty: checking the mapping without events (column names are checked once FORMS holds events)"
	}
	first := info.State.FirstSeq
	if info.State.LastSeq >= checkSampleLimit && info.State.LastSeq-checkSampleLimit+1 > first {
		first = info.State.LastSeq - checkSampleLimit + 1
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: first})
	if err != nil {
		return nil, "cannot read FORMS (" + err.Error() + "): checking the mapping without events (column names are checked once FORMS holds events)"
	}
	var out []*formsv1.FormSubmission
	for {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			break
		}
		n, last := 0, uint64(0)
		for msg := range batch.Messages() {
			n++
			if md, err := msg.Metadata(); err == nil {
				last = md.Sequence.Stream
			}
			if ev, err := stream.Unmarshal(msg.Data()); err == nil {
				out = append(out, ev)
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) || n == 0 || last >= info.State.LastSeq {
			break
		}
	}
	return out, fmt.Sprintf("checked against %d event(s) of stream FORMS", len(out))
}
