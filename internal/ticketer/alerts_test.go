package ticketer_test

import (
	"strings"
	"testing"
	"time"

	"github.com/cowjacket/formjira/internal/alert/smtptest"
	"github.com/cowjacket/formjira/internal/ticketer/ticketertest"

	"github.com/cowjacket/formjira/internal/form"
	"github.com/cowjacket/formjira/internal/jirasandbox"
	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

func (h *harness) alertEnv(smtpAddr string) {
	h.Env["ALERT_SMTP_ADDR"] = smtpAddr
	h.Env["ALERT_SMTP_USERNAME"] = smtptest.User
	h.Env["ALERT_SMTP_PASSWORD"] = smtptest.Pass
	h.Env["ALERT_SMTP_INSECURE_SKIP_VERIFY"] = "true"
	h.Env["ALERT_EMAIL_FROM"] = "Cowjacket alerts <alerts@cowjacket.test>"
	h.Env["ALERT_EMAIL_TO"] = "admin@cowjacket.test"
	h.Env["ALERT_DIGEST_INTERVAL"] = "2s"
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
		ticketertest.Event(form.WithValue(samples[1].Columns(), "departmentname", form.Text("Astrology")), 0),
		ticketertest.Event(form.WithValue(samples[4].Columns(), "departmentname", form.Text("Alchemy")), 0),
		ticketertest.Event(form.WithValue(samples[5].Columns(), "timeframe", form.Null()), 0),
	}
}

// Dead letters cause one digest e-mail with the counts per reason, not
// one e-mail per event.
func TestDeadLettersCauseOneDigestEmail(t *testing.T) {
	t.Parallel() // waits on Jira and NATS, not the CPU
	h := newHarness(t, jirasandbox.Options{})
	ms := smtptest.Start(t, smtptest.Options{StartTLS: true})
	h.alertEnv(ms.Addr)
	good := ticketertest.SampleEvents(t)[10:15]
	h.Publish(good...)
	h.Publish(badRows(t)...)
	h.Start()
	h.WaitFor("5 tickets and 3 dead letters", 20*time.Second, func() bool { return len(h.SB.Issues()) >= 5 && len(h.DLQ()) == 3 })
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
	t.Parallel() // waits on Jira and NATS, not the CPU
	h := newHarness(t, jirasandbox.Options{})
	l := smtptest.ListenSilent(t, "127.0.0.1:0")
	h.alertEnv(l.Addr().String())
	h.Env["ALERT_DIGEST_INTERVAL"] = "1s"
	h.Env["ALERT_MIN_INTERVAL"] = "1s"
	evs := ticketertest.SampleEvents(t)[20:60]
	h.Publish(badRows(t)...)
	h.Publish(evs...)
	start := time.Now()
	stop := h.Start()
	want := ticketertest.DistinctHashes(evs)
	h.WaitFor("every ticket", 15*time.Second, func() bool { return len(h.SB.Issues()) >= want && len(h.DLQ()) == 3 })
	t.Logf("%d tickets in %v with the SMTP server silent", want, time.Since(start).Round(time.Millisecond))
	time.Sleep(1500 * time.Millisecond) // the digest is due: its send hangs
	h.Publish(ticketertest.SampleEvents(t)[60:70]...)
	h.WaitFor("tickets while a send hangs", 10*time.Second, func() bool {
		return len(h.SB.Issues()) >= want+ticketertest.DistinctHashes(ticketertest.SampleEvents(t)[60:70])
	})
	t0 := time.Now()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d > 10*time.Second {
		t.Errorf("exit took %v with the SMTP server silent", d)
	}
	h.AssertOneTicketPerHash(append(evs, ticketertest.SampleEvents(t)[60:70]...))
}
