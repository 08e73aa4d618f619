package alert

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/cowjacket/formjira/internal/alert/smtptest"
	"github.com/cowjacket/formjira/internal/testsupport"
)

type syncBuffer = testsupport.Buffer

func testLogger() (*slog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// sent is one message a recordingSink received.
type sent struct {
	Subject, Body string
	Alerts        []Alert
	At            time.Time
}

// recordingSink records messages; send, when set, decides the result.
type recordingSink struct {
	send func(ctx context.Context) error

	mu   sync.Mutex
	msgs []sent
}

func (r *recordingSink) Send(ctx context.Context, subject, body string, alerts []Alert) error {
	if r.send != nil {
		if err := r.send(ctx); err != nil {
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, sent{subject, body, alerts, time.Now()})
	return nil
}

func (r *recordingSink) Msgs() []sent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sent(nil), r.msgs...)
}

func (r *recordingSink) wait(t *testing.T, n int, timeout time.Duration) []sent {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if m := r.Msgs(); len(m) >= n {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d messages, want %d within %s: %+v", len(r.Msgs()), n, timeout, r.Msgs())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// runAlerter starts a.Run and stops it at cleanup, failing if Run does not
// return within its flush bound.
func runAlerter(t *testing.T, a *Alerter) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(a.cfg.FlushTimeout + 2*time.Second):
				t.Errorf("Run did not return within its flush timeout")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// fastConfig is a Config with intervals short enough for tests.
func fastConfig() Config {
	return Config{
		DigestInterval: 200 * time.Millisecond,
		MinInterval:    300 * time.Millisecond,
		SendAttempts:   4,
		RetryBase:      20 * time.Millisecond,
		RetryMax:       100 * time.Millisecond,
		SendTimeout:    2 * time.Second,
		FlushTimeout:   time.Second,
	}
}

func smtpConfig(addr string) Config {
	c := fastConfig()
	c.SMTPAddr = addr
	c.SMTPUsername, c.SMTPPassword = smtptest.User, smtptest.Pass
	c.SMTPStartTLS, c.SMTPInsecureSkipVerify = true, true
	c.EmailFrom = "Cowjacket alerts <alerts@cowjacket.test>"
	c.EmailTo = []string{"admin@cowjacket.test", "oncall@cowjacket.test"}
	return c
}
