package ticketer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/sethvargo/go-retry"

	"github.com/cowjacket/formjira/internal/config"
	"github.com/cowjacket/formjira/internal/jira"
	"github.com/cowjacket/formjira/internal/jirasite"
	"github.com/cowjacket/formjira/internal/pause"
	"github.com/cowjacket/formjira/internal/stats"
	"github.com/cowjacket/formjira/internal/ticketing"
)

// checkCredentials asks Jira who the credentials are (GET /myself) before
// anything is consumed: a 401, or an answer for an anonymous user (Jira
// Cloud may serve failed credentials so), stops the start with one line
// naming the variables. Jira not answering does not: the circuit waits for it.
func checkCredentials(ctx context.Context, cfg *Config, jc *jira.Client, log *slog.Logger) error {
	cctx, cancel := context.WithTimeout(ctx, cfg.JiraTimeout)
	defer cancel()
	me, err := jc.Myself(jira.Probe(cctx))
	switch {
	case err == nil:
		log.Info("Jira accepts the credentials", "account", me.DisplayName)
		return nil
	case errors.Is(err, jira.ErrAuth):
		name := "JIRA_EMAIL/JIRA_API_TOKEN"
		if cfg.JiraPAT != "" && cfg.JiraEmail == "" {
			name = "JIRA_PAT"
		}
		return config.Errorf(name, "Jira refuses the credentials (%v)", err)
	case errors.Is(err, jira.ErrRedirect):
		return config.Errorf("JIRA_URL", "%v", err)
	default:
		// Retrying does not make a certificate trusted.
		if name, why := jira.Untrusted(err); name != "" {
			return config.Errorf(name, "%s: %v", why, err)
		}
		log.Warn("cannot check the Jira credentials now; starting, and holding events until Jira answers", "err", err)
		return nil
	}
}

// newSite is the shared view of Jira's health and pace, probing with
// GET /myself (which needs working credentials and a working Jira).
func newSite(jc **jira.Client, pacer *jira.Pacer, metrics *Metrics, alerts *alerting, rec func() *stats.Recorder, log *slog.Logger) *jirasite.Site {
	probe := func(ctx context.Context) error {
		_, err := (*jc).Myself(jira.Probe(ctx))
		return err
	}
	return jirasite.New(probe, pacer, log, jirasite.Options{Changed: func(st jirasite.State, reason string, down time.Duration, mine bool) {
		metrics.circuit(st)
		alerts.circuit(st == jirasite.Open, reason)
		if st == jirasite.Closed && mine {
			rec().Add(stats.JiraDownSeconds, int(down.Round(time.Second)/time.Second))
		}
	}})
}

// refusals is the pause between tries while Jira refuses us: it keeps
// growing across the resumes that fail again (a missing permission cannot
// be probed without creating), and starts over after a success.
type refusals struct {
	mu sync.Mutex
	b  retry.Backoff
}

func (r *refusals) next() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.b == nil {
		r.b = retry.WithCappedDuration(time.Minute, retry.NewExponential(time.Second))
	}
	d, _ := r.b.Next()
	return d
}

func (r *refusals) reset() {
	r.mu.Lock()
	r.b = nil
	r.mu.Unlock()
}

// waitForAuth blocks while Jira refuses the credentials or a permission
// every create needs, retrying with a growing pause, so that nothing is
// consumed (and nothing wasted) meanwhile.
func (s *service) waitForAuth(ctx context.Context) error {
	if !s.authBroken.Load() {
		return nil
	}
	s.authMu.Lock()
	defer s.authMu.Unlock()
	for s.authBroken.Load() {
		if !pause.For(ctx, s.refused.next()) {
			return ctx.Err()
		}
		s.engine.InvalidateMeta()
		_, err := s.engine.Meta(ctx)
		if ticketing.Refused(err) {
			s.log.Error(refusalLine(err)+": not consuming until fixed", "err", err)
			continue
		}
		// Jira answers: try again (a missing create permission shows only
		// on the next create, which stops consuming again).
		s.authBroken.Store(false)
		s.metrics.Refused.Set(0)
		s.log.Info("trying Jira again after its refusal")
	}
	return nil
}

// holdUntilUp keeps the held items alive while the circuit is open and
// re-processes them once it closes; it returns their final outcomes, or
// the held ones as they are when ctx ends (shutdown: nak'ed, counted as
// nothing).
func (s *service) holdUntilUp(workCtx, runCtx context.Context, items []ticketing.Item, outs []ticketing.Outcome) {
	for {
		var idx []int
		for i, o := range outs {
			if o.Status == ticketing.StatusHeld {
				idx = append(idx, i)
			}
		}
		if len(idx) == 0 {
			return
		}
		fns := make([]func(), len(idx))
		for k, i := range idx {
			fns[k] = items[i].KeepAlive
		}
		stop := ticketing.KeepAlive(fns, s.cfg.keepAliveEvery())
		err := s.site.WaitUp(runCtx)
		stop()
		if err != nil {
			return
		}
		held := make([]ticketing.Item, len(idx))
		for k, i := range idx {
			held[k] = items[i]
		}
		again := s.engine.Process(ticketing.WithSoftStop(workCtx, runCtx.Done()), held)
		for k, i := range idx {
			outs[i] = again[k]
		}
	}
}

// keepAliveEvery is how often a message being worked on (or held) is
// marked in progress: well within ACK_WAIT and the first redelivery delay.
func (c *Config) keepAliveEvery() time.Duration {
	return max(min(c.AckWait, c.redelivery(1))/3, 100*time.Millisecond)
}

// jiraNote is the readiness note while Jira is down: the pod is healthy,
// the outage is Jira's.
func (s *service) jiraNote() string {
	up, st, since, reason := s.site.Up()
	if up {
		return ""
	}
	return fmt.Sprintf("Jira unreachable since %s (circuit %s: %s); events are held, none is lost", since.UTC().Format(time.RFC3339), st, reason)
}

// refusalLine says in capitals what Jira refuses: the credentials (401,
// served as anonymous) or a permission (403; the error names it).
func refusalLine(err error) string {
	if errors.Is(err, jira.ErrPermission) {
		return "JIRA REFUSES A PERMISSION (the credentials are good; grant what the error names)"
	}
	return "JIRA REFUSES THE CREDENTIALS (check JIRA_EMAIL/JIRA_API_TOKEN or JIRA_PAT)"
}
