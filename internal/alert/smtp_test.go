package alert

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cowjacket/formjira/internal/alert/smtptest"
	"github.com/cowjacket/formjira/internal/testsupport"
)

func TestSMTPSinkSendsOverSTARTTLSWithAuth(t *testing.T) {
	ms := smtptest.Start(t, smtptest.Options{StartTLS: true})
	sink := NewSMTPSink(smtpConfig(ms.Addr))

	body := "Jira answered 401.\nLine two with ünïcode and a very long line " + strings.Repeat("x", 200)
	if err := sink.Send(context.Background(), "[cowjacket] Jira authentication failing (401)", body, nil); err != nil {
		t.Fatalf("Send: %v", err)
	}
	mails := ms.Mails()
	if len(mails) != 1 {
		t.Fatalf("got %d mails, want 1", len(mails))
	}
	m := mails[0]
	if !m.TLS {
		t.Error("mail was not sent over STARTTLS")
	}
	if got := ms.Auths(); len(got) != 1 || got[0] != smtptest.User+":"+smtptest.Pass {
		t.Errorf("AUTH attempts = %q, want the configured credentials once", got)
	}
	if m.User != smtptest.User || m.From != "alerts@cowjacket.test" {
		t.Errorf("user %q from %q", m.User, m.From)
	}
	if strings.Join(m.To, ",") != "admin@cowjacket.test,oncall@cowjacket.test" {
		t.Errorf("RCPT TO = %v", m.To)
	}
	if m.Subject != "[cowjacket] Jira authentication failing (401)" {
		t.Errorf("Subject = %q", m.Subject)
	}
	if strings.TrimSuffix(m.Body, "\n") != body {
		t.Errorf("body round trip:\n got %q\nwant %q", m.Body, body)
	}
	if m.Header.Get("Message-Id") == "" || m.Header.Get("Date") == "" {
		t.Errorf("missing Message-ID or Date: %v", m.Header)
	}
}

func TestSMTPSinkRefusesCredentialsWithoutSTARTTLS(t *testing.T) {
	ms := smtptest.Start(t, smtptest.Options{StartTLS: false}) // offers AUTH in the clear
	sink := NewSMTPSink(smtpConfig(ms.Addr))

	err := sink.Send(context.Background(), "subject", "body", nil)
	if !errors.Is(err, ErrNoStartTLS) {
		t.Fatalf("Send error = %v, want ErrNoStartTLS", err)
	}
	if !errors.Is(err, ErrPermanent) {
		t.Errorf("missing STARTTLS should be permanent (no retries): %v", err)
	}
	if got := ms.Auths(); len(got) != 0 {
		t.Errorf("credentials were sent without TLS: %q", got)
	}
	if len(ms.Mails()) != 0 {
		t.Error("mail was sent without TLS")
	}
	if strings.Contains(err.Error(), smtptest.Pass) {
		t.Error("error leaks the password")
	}
}

func TestSMTPSinkVerifiesCertificateUnlessTold(t *testing.T) {
	ms := smtptest.Start(t, smtptest.Options{StartTLS: true})
	cfg := smtpConfig(ms.Addr)
	cfg.SMTPInsecureSkipVerify = false

	err := NewSMTPSink(cfg).Send(context.Background(), "subject", "body", nil)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Send error = %v, want a certificate verification error", err)
	}
	if got := ms.Auths(); len(got) != 0 {
		t.Errorf("credentials sent to an unverified server: %q", got)
	}
}

func TestSMTPSinkClassifiesReplies(t *testing.T) {
	ms := smtptest.Start(t, smtptest.Options{StartTLS: true})
	sink := NewSMTPSink(smtpConfig(ms.Addr))

	ms.FailCode.Store(451)
	err := sink.Send(context.Background(), "s", "b", nil)
	if err == nil || errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), "451") {
		t.Errorf("451: got %v, want a retryable error naming 451", err)
	}
	ms.FailCode.Store(0)

	cfg := smtpConfig(ms.Addr)
	cfg.SMTPPassword = "wrong"
	err = NewSMTPSink(cfg).Send(context.Background(), "s", "b", nil)
	if !errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), "535") {
		t.Errorf("bad password: got %v, want permanent 535", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Error("error leaks the password")
	}
}

func TestSMTPSinkHonoursContext(t *testing.T) {
	// A server that accepts TCP but never greets: Send must give up when
	// ctx ends instead of hanging.
	addr := testsupport.FreeAddr(t)
	l := smtptest.ListenSilent(t, addr)
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := NewSMTPSink(smtpConfig(addr)).Send(ctx, "s", "b", nil)
	if err == nil {
		t.Fatal("Send to a silent server succeeded")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Send took %s after ctx expired", d)
	}
}
