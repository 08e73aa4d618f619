package ticketer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/cowjacket/formjira/internal/alert"
	"github.com/cowjacket/formjira/internal/deadletters"
	"github.com/cowjacket/formjira/internal/jira"
	"github.com/cowjacket/formjira/internal/stats"
	"github.com/cowjacket/formjira/internal/ticketing"
)

// alerting connects the service to internal/alert: dead letters feed the
// digest, 401/403 the auth alert, and two conditions watch Jira's health
// and the consumer backlog. Every method is non-blocking (Notify queues)
// and a nil *alerting does nothing, so alerts can never hold up tickets.
type alerting struct {
	a        alert.Notifier // *alert.Alerter
	log      *slog.Logger
	jiraDown *alert.Condition
	tick     time.Duration

	backlogAfter  time.Duration
	backlogFiring bool

	mu         sync.Mutex
	down       bool // Jira's circuit is open
	downReason string
	// backlog samples covering the last backlogAfter (and one before)
	samples []backlogSample
	now     func() time.Time
}

type backlogSample struct {
	at time.Time
	n  uint64
}

func newAlerting(cfg alert.Config, a alert.Notifier, log *slog.Logger) *alerting {
	cfg = cfg.WithDefaults()
	return &alerting{
		a:   a,
		log: log,
		jiraDown: alert.NewCondition(alert.JiraUnreachable, cfg.JiraDownAfter, a,
			alert.WithSummary("Jira unreachable: tickets are delayed (events wait in FORMS, none is lost)")),
		backlogAfter: cfg.BacklogGrowingAfter,
		tick:         min(max(cfg.JiraDownAfter/5, 100*time.Millisecond), 5*time.Second),
		now:          time.Now,
	}
}

// circuit is told when Jira's circuit opens (down) or closes.
func (al *alerting) circuit(down bool, reason string) {
	if al == nil {
		return
	}
	al.mu.Lock()
	al.down, al.downReason = down, reason
	al.mu.Unlock()
}

// watch evaluates the Jira condition periodically.
func (al *alerting) watch(ctx context.Context) {
	if al == nil {
		return
	}
	t := time.NewTicker(al.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		al.mu.Lock()
		down, reason := al.down, al.downReason
		al.mu.Unlock()
		al.jiraDown.Observe(down, "Jira's circuit is open (only health probes are sent): "+reason)
	}
}

// observeBacklog takes the consumer's num_pending (pollPending). The
// backlog counts as growing when, over the last ALERT_BACKLOG_GROWING_AFTER,
// it never came back down to where it was at the start of that period
// and is above it now: steady growth, even with dips, but not a backlog
// that keeps being worked off.
func (al *alerting) observeBacklog(pending uint64) {
	if al == nil {
		return
	}
	al.mu.Lock()
	now := al.now()
	al.samples = append(al.samples, backlogSample{now, pending})
	// Keep one sample at or before the window's start: the base.
	cut := now.Add(-al.backlogAfter)
	for len(al.samples) > 1 && !al.samples[1].at.After(cut) {
		al.samples = al.samples[1:]
	}
	base := al.samples[0]
	growing := pending > 0 && !base.at.After(cut) && pending > base.n
	for _, s := range al.samples[1:] {
		if s.n <= base.n {
			growing = false
			break
		}
	}
	fire, resolve := growing && !al.backlogFiring, !growing && al.backlogFiring && pending <= base.n
	if fire {
		al.backlogFiring = true
	}
	if resolve {
		al.backlogFiring = false
	}
	al.mu.Unlock()
	const summary = "ticketer backlog growing: events arrive faster than tickets are created"
	switch {
	case fire:
		al.a.Notify(alert.Alert{Kind: alert.BacklogGrowing, Summary: summary,
			Detail: fmt.Sprintf("%d events wait in FORMS for consumer ticketer, up from %d at %s UTC without draining (threshold %s)",
				pending, base.n, base.at.UTC().Format("15:04:05"), al.backlogAfter),
			Fields: map[string]string{"num_pending": strconv.FormatUint(pending, 10)}})
	case resolve:
		al.a.Notify(alert.Alert{Kind: alert.BacklogGrowing, Summary: summary, Resolved: true,
			Detail: fmt.Sprintf("the backlog no longer grows: %d events wait in FORMS, %d at %s UTC", pending, base.n, base.at.UTC().Format("15:04:05"))})
	}
}

// deadLettered feeds the digest: one alert per event, grouped by reason
// and fields, sent at most every ALERT_DIGEST_INTERVAL.
func (al *alerting) deadLettered(it ticketing.Item, o ticketing.Outcome) {
	if al == nil || o.DeadLetter == nil {
		return
	}
	d := *o.DeadLetter
	al.a.Notify(alert.Alert{
		Kind:    alert.DeadLetter,
		Summary: deadletters.ReasonKey(d),
		Detail: fmt.Sprintf("DLQ seq %d (%s seq %d, hash %s): %s", o.DLQSeq, cmp.Or(it.Stream, "?"), it.Seq,
			deadletters.ShortHash(d.Hash), deadletters.ReasonText(d)),
		Fields: map[string]string{"dlq_seq": strconv.FormatUint(o.DLQSeq, 10), "hash": d.Hash, "reason": d.Reason},
	})
}

// authFailed raises the 401/403 alert (the Alerter folds repeats).
func (al *alerting) authFailed(err error) {
	if al == nil {
		return
	}
	status := http.StatusUnauthorized
	var ae *jira.APIError
	if errors.As(err, &ae) {
		status = ae.Status
	}
	al.a.Notify(alert.JiraAuthFailed(status, "ticketer stopped consuming until Jira accepts JIRA_EMAIL/JIRA_API_TOKEN (or JIRA_PAT) again; "+
		"events wait in FORMS. "+err.Error()))
}

// afterBatch feeds a processed batch to the daily counters and alerts.
func (s *service) afterBatch(items []ticketing.Item, outs []ticketing.Outcome) {
	s.count(outs)
	authSeen := false
	for i, o := range outs {
		switch o.Status {
		case ticketing.StatusDeadLettered:
			s.alerts.deadLettered(items[i], o)
		case ticketing.StatusAuth:
			if !authSeen {
				authSeen = true
				s.alerts.authFailed(o.Err)
			}
		}
	}
}

// count records a batch's outcomes in the daily counters.
func (s *service) count(outs []ticketing.Outcome) {
	var created, skipped, failed, dead int
	for _, o := range outs {
		switch o.Status {
		case ticketing.StatusCreated:
			created++
		case ticketing.StatusSkipped:
			skipped++
		case ticketing.StatusDeadLettered:
			dead++
		case ticketing.StatusHeld: // shutdown during an outage: not a failure
		default: // retry, auth, rejected: the event has no ticket yet
			failed++
		}
	}
	s.stats.Add(stats.Created, created)
	s.stats.Add(stats.Skipped, skipped)
	s.stats.Add(stats.Failed, failed)
	s.stats.Add(stats.DeadLettered, dead)
}
