package ticketing

import (
	"context"
	"fmt"
	"time"

	"github.com/cowjacket/formjira/internal/ticket"
)

// Meta is Jira's view of the target fields, cached until a failure
// suggests it changed.
func (p *Engine) Meta(ctx context.Context) (*ticket.Meta, error) {
	p.metaMu.Lock()
	defer p.metaMu.Unlock()
	if p.meta != nil && !p.metaOld {
		return p.meta, nil
	}
	m, err := p.cfg.Jira.Meta(ctx, p.cfg.Mapping.Target())
	if err != nil {
		if p.meta != nil && !Refused(err) {
			return p.meta, nil // a stale view beats none while Jira hiccups
		}
		return nil, fmt.Errorf("fetch Jira field metadata: %w", err)
	}
	p.meta, p.metaAt, p.metaOld = m, time.Now(), false
	return m, nil
}

func (p *Engine) metaAge() time.Duration {
	p.metaMu.Lock()
	defer p.metaMu.Unlock()
	return time.Since(p.metaAt)
}

// InvalidateMeta makes the next Meta fetch afresh.
func (p *Engine) InvalidateMeta() {
	p.metaMu.Lock()
	p.metaOld = true
	p.metaMu.Unlock()
}

// QueueLabelEdits switches deferred label edits (JSM) from "now, in the
// caller" to a queue that RunLabelEdits drains: for the service, whose
// creates should not wait for them.
func (p *Engine) QueueLabelEdits() { p.labels.Start() }

// RunLabelEdits drains the queued label edits with workers goroutines,
// after queueing those left pending by earlier runs, until ctx ends.
func (p *Engine) RunLabelEdits(ctx context.Context, workers int) { p.labels.Run(ctx, workers) }
