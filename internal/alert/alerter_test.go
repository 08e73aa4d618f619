package alert

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cowjacket/formjira/internal/alert/smtptest"
	"github.com/cowjacket/formjira/internal/testsupport"
)

func TestDigestBatchesDeadLettersIntoOneEmail(t *testing.T) {
	ms := smtptest.Start(t, smtptest.Options{StartTLS: true})
	cfg := smtpConfig(ms.Addr)
	a := New(cfg, nil) // sinks from cfg: exercises Config.Sinks
	if !a.Enabled() {
		t.Fatal("alerter with SMTP configured is not enabled")
	}
	runAlerter(t, a)

	reasons := []struct {
		reason string
		n      int
	}{
		{"jira 400: customfield_10010 is required", 15},
		{"mapping: unknown device model", 7},
		{"retries exhausted: jira 503", 3},
	}
	for _, r := range reasons {
		for i := range r.n {
			a.Notify(DeadLettered(r.reason, fmt.Sprintf("stream_seq=%d", i), 1))
		}
	}

	mails := ms.WaitMails(t, 1, 2*time.Second)
	// Two more digest intervals: nothing else may arrive.
	time.Sleep(2 * cfg.DigestInterval)
	if mails = ms.Mails(); len(mails) != 1 {
		t.Fatalf("25 dead letters produced %d mails, want exactly 1", len(mails))
	}
	m := mails[0]
	if want := "[cowjacket] 25 dead letters in the last 200ms"; m.Subject != want {
		t.Errorf("Subject = %q, want %q", m.Subject, want)
	}
	if !m.TLS || m.User != smtptest.User {
		t.Errorf("digest not sent over TLS with credentials: tls=%v user=%q", m.TLS, m.User)
	}
	if !strings.Contains(m.Body, "(total 25)") {
		t.Errorf("body lacks the total:\n%s", m.Body)
	}
	// Per-reason counts, most frequent first.
	var last int
	for _, r := range reasons {
		re := regexp.MustCompile(`(?m)^\s*` + fmt.Sprint(r.n) + `  ` + regexp.QuoteMeta(r.reason) + `$`)
		loc := re.FindStringIndex(m.Body)
		if loc == nil {
			t.Errorf("body lacks %q with count %d:\n%s", r.reason, r.n, m.Body)
			continue
		}
		if loc[0] < last {
			t.Errorf("reason %q out of order", r.reason)
		}
		last = loc[0]
	}
}

func TestDigestListsTopReasonsAndTheRest(t *testing.T) {
	sink := &recordingSink{}
	a := New(fastConfig(), nil, sink)
	runAlerter(t, a)
	for i := range topReasons + 3 {
		a.Notify(DeadLettered(fmt.Sprintf("reason %02d", i), "", 2)) // Count carries several
	}
	msgs := sink.wait(t, 1, 2*time.Second)
	m := msgs[0]
	total := (topReasons + 3) * 2
	if !strings.Contains(m.Subject, fmt.Sprintf("%d dead letters", total)) {
		t.Errorf("Subject = %q, want total %d", m.Subject, total)
	}
	if !strings.Contains(m.Body, "… and 3 more reasons (6 dead letters)") {
		t.Errorf("body does not summarise the tail:\n%s", m.Body)
	}
	if len(m.Alerts) != topReasons+3 {
		t.Errorf("structured alerts = %d, want one per reason (%d)", len(m.Alerts), topReasons+3)
	}
}

func TestSMTPOutageRetriedLoggedAndRecovered(t *testing.T) {
	ms := smtptest.Start(t, smtptest.Options{StartTLS: true})
	ms.FailCode.Store(451)
	cfg := smtpConfig(ms.Addr)
	logger, logs := testLogger()
	a := New(cfg, logger)
	runAlerter(t, a)

	a.Notify(JiraAuthFailed(401, "Unauthorized"))
	// Let two attempts fail, then recover: the third attempt delivers.
	deadline := time.Now().Add(3 * time.Second)
	for ms.DataCalls.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d DATA attempts", ms.DataCalls.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	ms.FailCode.Store(0)
	m := ms.WaitMails(t, 1, 3*time.Second)[0]
	if m.Subject != "[cowjacket] Jira authentication failing (401)" {
		t.Errorf("Subject = %q", m.Subject)
	}
	if n := strings.Count(logs.String(), "alert send failed; retrying"); n < 2 {
		t.Errorf("logged %d retries, want one line per failed attempt (>= 2):\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), "451") {
		t.Errorf("log does not carry the server's reply:\n%s", logs)
	}
	if strings.Contains(logs.String(), smtptest.Pass) {
		t.Error("log leaks the SMTP password")
	}
	// The server stores the mail before the client reads its reply.
	testsupport.WaitFor(t, "the alerter's state", time.Second, func() bool { return a.Stats().Sent == 1 })
	if s := a.Stats(); s.Sent != 1 || s.Failed != 0 {
		t.Errorf("Stats = %+v, want 1 sent", s)
	}
}

func TestSMTPDownNotifyNeverBlocksAndLaterRecovers(t *testing.T) {
	addr := testsupport.FreeAddr(t) // nothing listens yet: connection refused
	cfg := smtpConfig(addr)
	cfg.SendAttempts = 3
	logger, logs := testLogger()
	a := New(cfg, logger)
	runAlerter(t, a)

	const n = 10_000
	start := time.Now()
	for i := range n {
		a.Notify(DeadLettered(fmt.Sprintf("reason %d", i%7), "", 1))
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("%d Notify calls took %s; Notify must not block", n, d)
	}
	// The digest goes out, fails every attempt and is dropped: one log line
	// per failed attempt and one for giving up.
	// Wait for the log line itself: the failure is counted before it is
	// logged, so waiting on Stats raced with the logger.
	testsupport.WaitFor(t, "the alerter's state", 5*time.Second, func() bool {
		return a.Stats().Failed >= 1 && strings.Contains(logs.String(), "alert send failed; message dropped")
	})
	if got := strings.Count(logs.String(), "alert send failed; message dropped"); got != 1 {
		t.Errorf("give-up logged %d times, want 1:\n%s", got, logs)
	}
	if got := strings.Count(logs.String(), "alert send failed; retrying"); got != cfg.SendAttempts-1 {
		t.Errorf("retries logged %d times, want %d:\n%s", got, cfg.SendAttempts-1, logs)
	}
	// Notify still returns at once while the sink is down.
	start = time.Now()
	for range n {
		a.Notify(Alert{Kind: BacklogGrowing})
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("Notify blocked after failures: %s", d)
	}

	// The server comes up: the next message is delivered and says that
	// earlier ones were lost.
	ms := smtptest.Start(t, smtptest.Options{StartTLS: true, Addr: addr})
	a.Notify(DeadLettered("jira 400", "", 1))
	mails := ms.WaitMails(t, 1, 5*time.Second)
	var found bool
	for _, m := range mails {
		if strings.Contains(m.Body, "earlier alert messages could not be delivered") {
			found = true
		}
	}
	if !found {
		t.Errorf("no mail after recovery reports the lost messages: %+v", mails)
	}
	testsupport.WaitFor(t, "the alerter's state", 2*time.Second, func() bool { return a.Stats().Sent >= 1 })
}

func TestFullBufferDropsAreCountedAndReported(t *testing.T) {
	sink := &recordingSink{}
	cfg := fastConfig()
	cfg.QueueSize = 4
	logger, logs := testLogger()
	a := New(cfg, logger, sink)
	// Run is not started yet, so the buffer fills deterministically.
	for range 10 {
		a.Notify(DeadLettered("boom", "", 1))
	}
	if got := a.Stats().Dropped; got != 6 {
		t.Fatalf("Dropped = %d, want 6", got)
	}
	if got := strings.Count(logs.String(), "alert queue full"); got != 1 {
		t.Errorf("queue-full logged %d times, want once", got)
	}
	runAlerter(t, a)
	m := sink.wait(t, 1, 2*time.Second)[0]
	if !strings.Contains(m.Subject, "4 dead letters") {
		t.Errorf("Subject = %q, want the 4 buffered", m.Subject)
	}
	if !strings.Contains(m.Body, "6 alerts dropped") {
		t.Errorf("body does not report drops:\n%s", m.Body)
	}
}

func TestRepeatedJiraAuthIsRateLimited(t *testing.T) {
	sink := &recordingSink{}
	cfg := fastConfig() // MinInterval 300ms
	a := New(cfg, nil, sink)
	runAlerter(t, a)

	start := time.Now()
	for range 5 {
		a.Notify(JiraAuthFailed(401, "Unauthorized"))
	}
	first := sink.wait(t, 1, time.Second)[0]
	if first.Subject != "[cowjacket] Jira authentication failing (401)" {
		t.Errorf("first Subject = %q", first.Subject)
	}
	if d := first.At.Sub(start); d > cfg.MinInterval-50*time.Millisecond {
		t.Errorf("first alert took %s; it should go out promptly", d)
	}
	// The 4 repeats are folded into one message when the window closes.
	msgs := sink.wait(t, 2, 2*time.Second)
	second := msgs[1]
	if gap := second.At.Sub(first.At); gap < cfg.MinInterval-20*time.Millisecond {
		t.Errorf("second message %s after the first; min interval is %s", gap, cfg.MinInterval)
	}
	if !strings.Contains(second.Subject, "(4 times since") || second.Alerts[0].Count != 4 {
		t.Errorf("second = %q count %d, want the 4 repeats folded", second.Subject, second.Alerts[0].Count)
	}
	time.Sleep(2 * cfg.MinInterval)
	if got := len(sink.Msgs()); got != 2 {
		t.Errorf("%d messages for 5 repeats, want 2", got)
	}
	// Another kind is not held back by JiraAuth's window.
	a.Notify(Alert{Kind: JiraUnreachable, Detail: "dial tcp: connection refused"})
	a.Notify(JiraAuthFailed(403, "Forbidden")) // window over: sent at once
	msgs = sink.wait(t, 4, time.Second)
	subjects := []string{msgs[2].Subject, msgs[3].Subject}
	if !contains(subjects, "[cowjacket] Jira unreachable") || !contains(subjects, "[cowjacket] Jira authentication failing (403)") {
		t.Errorf("subjects = %q", subjects)
	}
}

func TestResolvedIsSentPromptly(t *testing.T) {
	sink := &recordingSink{}
	cfg := fastConfig()
	cfg.MinInterval = time.Hour // a resolution must not wait for the window
	a := New(cfg, nil, sink)
	runAlerter(t, a)

	a.Notify(Alert{Kind: CaptureStalled, Detail: "slot lag 2 GiB"})
	a.Notify(Alert{Kind: CaptureStalled, Resolved: true, Detail: "cleared"})
	a.Notify(Alert{Kind: CaptureStalled, Resolved: true, Detail: "cleared again"}) // nothing new to resolve
	msgs := sink.wait(t, 2, time.Second)
	if msgs[1].Subject != "[cowjacket] RESOLVED: Capture stalled" {
		t.Errorf("Subject = %q", msgs[1].Subject)
	}
	time.Sleep(100 * time.Millisecond)
	if got := len(sink.Msgs()); got != 2 {
		t.Errorf("%d messages, want 2", got)
	}
}

func TestRunFlushesPendingOnShutdown(t *testing.T) {
	sink := &recordingSink{}
	cfg := fastConfig()
	cfg.DigestInterval = time.Hour
	a := New(cfg, nil, sink)
	stop := runAlerter(t, a)
	a.Notify(DeadLettered("jira 400", "", 3))
	time.Sleep(50 * time.Millisecond) // let Run take it
	stop()
	msgs := sink.Msgs()
	if len(msgs) != 1 || !strings.Contains(msgs[0].Subject, "3 dead letters") {
		t.Fatalf("after shutdown got %+v, want the pending digest", msgs)
	}
}

func TestRunShutdownIsBoundedWhenSinkHangs(t *testing.T) {
	sink := &recordingSink{send: func(ctx context.Context) error {
		<-ctx.Done() // a sink that never answers until told to stop
		return ctx.Err()
	}}
	cfg := fastConfig()
	cfg.FlushTimeout = 300 * time.Millisecond
	cfg.SendTimeout = time.Hour
	a := New(cfg, nil, sink)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	a.Notify(Alert{Kind: JiraUnreachable})
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		if d := time.Since(start); d > cfg.FlushTimeout+time.Second {
			t.Errorf("shutdown took %s", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return with a hanging sink")
	}
}

func TestPermanentErrorsAreNotRetried(t *testing.T) {
	var calls atomic.Int32
	sink := &recordingSink{send: func(context.Context) error {
		calls.Add(1)
		return Permanent(errors.New("550 no such user"))
	}}
	logger, logs := testLogger()
	a := New(fastConfig(), logger, sink)
	runAlerter(t, a)
	a.Notify(Alert{Kind: BacklogGrowing})
	testsupport.WaitFor(t, "the alerter's state", 2*time.Second, func() bool { return a.Stats().Failed == 1 })
	time.Sleep(100 * time.Millisecond) // would be time for retries
	if calls.Load() != 1 {
		t.Errorf("permanent failure attempted %d times, want 1", calls.Load())
	}
	if strings.Count(logs.String(), "retrying") != 0 || strings.Count(logs.String(), "message dropped") != 1 {
		t.Errorf("logs:\n%s", logs)
	}
}

func TestDisabledAlerterIsNoop(t *testing.T) {
	cfg, err := ConfigFromEnv(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	a := New(cfg, nil)
	if a.Enabled() {
		t.Fatal("enabled without sinks")
	}
	a.Notify(Alert{Kind: JiraAuth}) // must not panic or block
	var nilAlerter *Alerter
	nilAlerter.Notify(Alert{Kind: JiraAuth})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := a.Run(ctx); err != nil {
		t.Errorf("Run = %v", err)
	}
}

func TestRunTwiceFails(t *testing.T) {
	a := New(fastConfig(), nil, &recordingSink{})
	runAlerter(t, a)
	testsupport.WaitFor(t, "the alerter's state", time.Second, func() bool { return a.running.Load() })
	if err := a.Run(context.Background()); err == nil {
		t.Error("second Run succeeded")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
