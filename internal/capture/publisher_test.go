package capture

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cowjacket/formjira/internal/pgcdc"
	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

// fakeConn is the NATS connection as the publisher sees it: it keeps what
// was published and lets the test answer for JetStream, in any order.
type fakeConn struct {
	mu    sync.Mutex
	msgs  []*nats.Msg
	reply nats.MsgHandler
}

func (c *fakeConn) PublishMsg(m *nats.Msg) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	cp := *m
	c.msgs = append(c.msgs, &cp)
	return nil
}

func (c *fakeConn) Subscribe(_ string, cb nats.MsgHandler) (*nats.Subscription, error) {
	c.reply = cb
	return &nats.Subscription{}, nil
}
func (c *fakeConn) NewInbox() string                              { return "_INBOX_capture.test" }
func (c *fakeConn) MaxPayload() int64                             { return 1 << 20 }
func (c *fakeConn) StatusChanged(...nats.Status) chan nats.Status { return make(chan nats.Status) }
func (c *fakeConn) sent(i int) *nats.Msg                          { c.mu.Lock(); defer c.mu.Unlock(); return c.msgs[i] }
func (c *fakeConn) answer(i int, data string) {
	c.reply(&nats.Msg{Subject: c.sent(i).Reply, Data: []byte(data)})
}
func (c *fakeConn) ack(i int, seq int) { c.answer(i, `{"stream":"FORMS","seq":`+strconv.Itoa(seq)+`}`) }

// Design guarantee 1: the slot is confirmed only behind JetStream's
// acknowledgement of every row of a commit and of all earlier ones.
// Answers arrive out of order and one of them is an error: nothing is
// confirmed past the first row JetStream has not stored.
func TestConfirmedOnlyBehindEveryEarlierAck(t *testing.T) {
	nc := &fakeConn{}
	p, err := newPublisher(nc, "forms.submitted.public.form_submissions", 1<<20, 16, time.Minute,
		slog.New(slog.NewTextHandler(io.Discard, nil)), newMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, end := range []pglogrepl.LSN{100, 200, 300} { // three one-row transactions
		ev := &formsv1.FormSubmission{Hash: "h" + strconv.Itoa(i)}
		if err := p.Publish(ctx, pgcdc.Decoded{Event: ev}); err != nil {
			t.Fatal(err)
		}
		p.Commit(end)
	}
	steps := []struct {
		what string
		do   func()
		want pglogrepl.LSN
	}{
		{"the third row acknowledged first", func() { nc.ack(2, 3) }, 0},
		{"the second row acknowledged", func() { nc.ack(1, 2) }, 0},
		{"the first row refused (stream full)", func() {
			nc.answer(0, `{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"}}`)
		}, 0},
		{"the first row stored at last", func() { nc.ack(0, 1) }, 300},
	}
	for _, s := range steps {
		s.do()
		if got := p.Confirmed(); got != s.want {
			t.Fatalf("after %s: confirmed %v, want %v", s.what, got, s.want)
		}
	}
	if p.inFlight() != 0 {
		t.Errorf("%d rows still in flight", p.inFlight())
	}
}
