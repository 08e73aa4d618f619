package ticketer

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cowjacket/formjira/internal/alert/smtptest"

	"github.com/cowjacket/formjira/internal/alert"
	"github.com/cowjacket/formjira/internal/form"
	"github.com/cowjacket/formjira/internal/jirasandbox"
	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

func (h *harness) alertEnv(smtpAddr string) {
	h.env["ALERT_SMTP_ADDR"] = smtpAddr
	h.env["ALERT_SMTP_USERNAME"] = smtptest.User
	h.env["ALERT_SMTP_PASSWORD"] = smtptest.Pass
	h.env["ALERT_SMTP_INSECURE_SKIP_VERIFY"] = "true"
	h.env["ALERT_EMAIL_FROM"] = "Cowjacket alerts <alerts@cowjacket.test>"
	h.env["ALERT_EMAIL_TO"] = "admin@cowjacket.test"
	h.env["ALERT_DIGEST_INTERVAL"] = "2s"
}

// badRows are three rows the mapping refuses: two bad departments, one
// missing time frame.
func badRows(t *testing.T) []*formsv1.FormSubmission {
	t.Helper()
	samples, err := form.Samples()
	if err != nil {
		t.Fatal(err)
	}
	return []*formsv1.FormSubmission{
		event(withColumn(samples[1].Columns(), "departmentname", form.Text("Astrology")), 0),
		event(withColumn(samples[4].Columns(), "departmentname", form.Text("Alchemy")), 0),
		event(withColumn(samples[5].Columns(), "timeframe", form.Null()), 0),
	}
}

// Dead letters cause one digest e-mail with the counts per reason, not
// one e-mail per event.
func TestDeadLettersCauseOneDigestEmail(t *testing.T) {
	h := newHarness(t, jirasandbox.Options{})
	ms := smtptest.Start(t, smtptest.Options{StartTLS: true})
	h.alertEnv(ms.Addr)
	good := sampleEvents(t)[10:15]
	h.publish(good...)
	h.publish(badRows(t)...)
	h.start()
	h.waitFor("5 tickets and 3 dead letters", 20*time.Second, func() bool { return len(h.sb.Issues()) >= 5 && len(h.dlq()) == 3 })
	mails := ms.WaitMails(t, 1, 10*time.Second)
	time.Sleep(2500 * time.Millisecond) // another digest interval: nothing more may come
	if mails = ms.Mails(); len(mails) != 1 {
		t.Fatalf("%d mails, want 1 digest", len(mails))
	}
	m := mails[0]
	if !m.TLS || m.User != smtptest.User || !strings.Contains(m.Subject, "3 dead letters") {
		t.Errorf("mail: tls %v user %q subject %q", m.TLS, m.User, m.Subject)
	}
	for _, want := range []string{
		"     2  the row cannot be mapped to Jira's fields: customfield_10073 (Department)",
		"     1  the row cannot be mapped to Jira's fields: customfield_10079",
		"ticketer dlq list",
	} {
		if !strings.Contains(m.Body, want) {
			t.Errorf("digest lacks %q:\n%s", want, m.Body)
		}
	}
}

// An SMTP server that accepts connections and never answers must not slow
// ticket creation, nor the service's exit.
func TestSMTPDownKeepsCreatingTickets(t *testing.T) {
	h := newHarness(t, jirasandbox.Options{})
	l := smtptest.ListenSilent(t, "127.0.0.1:0")
	h.alertEnv(l.Addr().String())
	h.env["ALERT_DIGEST_INTERVAL"] = "1s"
	h.env["ALERT_MIN_INTERVAL"] = "1s"
	evs := sampleEvents(t)[20:60]
	h.publish(badRows(t)...)
	h.publish(evs...)
	start := time.Now()
	stop := h.start()
	want := distinctHashes(evs)
	h.waitFor("every ticket", 15*time.Second, func() bool { return len(h.sb.Issues()) >= want && len(h.dlq()) == 3 })
	t.Logf("%d tickets in %v with the SMTP server silent", want, time.Since(start).Round(time.Millisecond))
	time.Sleep(1500 * time.Millisecond) // the digest is due: its send hangs
	h.publish(sampleEvents(t)[60:70]...)
	h.waitFor("tickets while a send hangs", 10*time.Second, func() bool { return len(h.sb.Issues()) >= want+distinctHashes(sampleEvents(t)[60:70]) })
	t0 := time.Now()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d > 10*time.Second {
		t.Errorf("exit took %v with the SMTP server silent", d)
	}
	h.assertOneTicketPerHash(append(evs, sampleEvents(t)[60:70]...))
}

type recordingNotifier struct {
	mu     sync.Mutex
	alerts []alert.Alert
}

func (r *recordingNotifier) Notify(a alert.Alert) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.alerts = append(r.alerts, a)
}

func (r *recordingNotifier) find(k alert.Kind, resolved bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range r.alerts {
		if a.Kind == k && a.Resolved == resolved {
			return true
		}
	}
	return false
}

func TestJiraDownAndBacklogConditions(t *testing.T) {
	rec := &recordingNotifier{}
	al := newAlerting(alert.Config{JiraDownAfter: 300 * time.Millisecond, BacklogGrowingAfter: 300 * time.Millisecond}, rec, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go al.watch(ctx)
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("no %s; alerts %+v", what, rec.alerts)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// One lost request followed by silence is no outage.
	al.observeJira("create", 0, 0)
	time.Sleep(500 * time.Millisecond)
	if rec.find(alert.JiraUnreachable, false) {
		t.Fatal("one failed request raised Jira unreachable")
	}
	al.observeJira("create", 503, 0)
	wait("Jira unreachable alert", func() bool { return rec.find(alert.JiraUnreachable, false) })
	al.observeJira("create", 400, 0) // an answer: Jira is back
	wait("Jira resolved alert", func() bool { return rec.find(alert.JiraUnreachable, true) })

	// Backlog: growing for longer than the threshold fires; draining resolves.
	for _, n := range []uint64{10, 20, 30} {
		al.observeBacklog(n)
		time.Sleep(200 * time.Millisecond)
	}
	al.observeBacklog(40)
	wait("backlog alert", func() bool { return rec.find(alert.BacklogGrowing, false) })
	al.observeBacklog(5)
	wait("backlog resolved", func() bool { return rec.find(alert.BacklogGrowing, true) })
	// A backlog that is worked off (back to where it was) within the
	// threshold raises nothing.
	rec2 := &recordingNotifier{}
	al2 := newAlerting(alert.Config{BacklogGrowingAfter: 300 * time.Millisecond}, rec2, slog.New(slog.DiscardHandler))
	for _, n := range []uint64{0, 5, 3, 0, 6, 2, 0, 4, 1, 0, 7, 0} {
		al2.observeBacklog(n)
		time.Sleep(60 * time.Millisecond)
	}
	if len(rec2.alerts) != 0 {
		t.Errorf("fluctuating backlog alerted: %+v", rec2.alerts)
	}
}
