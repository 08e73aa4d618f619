package e2e

// Independent tests of design.md's "Delivery guarantees", written from the
// outside: the built binaries as real processes killed with SIGKILL, the
// services in-process through their Run, the Jira sandbox's fault
// injection. They aim at combinations the other tests leave out.

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/capture"
	"github.com/cowjacket/formjira/internal/form"
	"github.com/cowjacket/formjira/internal/jirasandbox"
	"github.com/cowjacket/formjira/internal/localnats"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/testsupport"
	"github.com/cowjacket/formjira/internal/ticketer"
	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

// buildBinary builds ./cmd/<name> into a test folder and returns its path.
func buildBinary(t testing.TB, name string) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), name)
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/"+name)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/%s: %v\n%s", name, err, out)
	}
	return bin
}

// osProc is a built binary running as a real process.
type osProc struct {
	name string
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{}
	err  error
}

// startBinary runs bin with exactly env as its environment, in an empty
// working folder (no .env), until killed or the end of the test.
func startBinary(t testing.TB, name, bin string, env map[string]string) *osProc {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Dir = t.TempDir()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &osProc{name: name, cmd: cmd, logs: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill(t)
		if t.Failed() {
			t.Logf("%s log (tail):\n%s", p.name, tail(p.logs.String(), 4000))
		}
	})
	return p
}

// kill is kill -9; it returns once the process is gone.
func (p *osProc) kill(t testing.TB) {
	t.Helper()
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Errorf("%s survived SIGKILL for 10 s", p.name)
	}
}

// term is SIGTERM; the design promises an exit within 10 s.
func (p *osProc) term(t *testing.T) error {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(12 * time.Second):
		t.Errorf("%s did not exit within 12 s of SIGTERM", p.name)
		return nil
	}
}

func (p *osProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// eventOf is the event capture would publish for sample s with comments.
func eventOf(s form.Sample, comments string) *formsv1.FormSubmission {
	c := cloneSample(s)
	c["Comments"] = &comments
	src := &formsv1.Source{Origin: "guarantees_test", Schema: "public", Table: "form_submissions"}
	return form.NewEvent(form.Sample(c).Columns(), []string{"id"}, nil, src, time.Now())
}

var formsSubject = stream.Subject("public", "form_submissions")

// publishEvent stores ev in FORMS with msgID as its Nats-Msg-Id (the hash
// for a capture-like publish; anything else stands for a re-send after the
// duplicate window closed).
func publishEvent(t *testing.T, js jetstream.JetStream, ev *formsv1.FormSubmission, msgID string) {
	t.Helper()
	m, err := stream.NewMsg(formsSubject, ev)
	if err != nil {
		t.Fatal(err)
	}
	m.Header.Set(nats.MsgIdHdr, msgID)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, err := js.PublishMsg(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if ack.Duplicate {
		t.Fatalf("publish of %s with id %s collapsed as a duplicate", ev.GetHash(), msgID)
	}
}

func ensureForms(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := stream.EnsureForms(ctx, js, stream.Config{}); err != nil {
		t.Fatal(err)
	}
}

func consumerInfo(t *testing.T, js jetstream.JetStream) *jetstream.ConsumerInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := js.Consumer(ctx, stream.Forms, stream.TicketerConsumer)
	if err != nil {
		return nil
	}
	info, err := c.Info(ctx)
	if err != nil {
		return nil
	}
	return info
}

// drained: the ticketer consumer has nothing pending and nothing in flight.
func drained(t *testing.T, js jetstream.JetStream) bool {
	info := consumerInfo(t, js)
	return info != nil && info.NumPending == 0 && info.NumAckPending == 0
}

// TestLastDeliveryLostToACrashIsNotSilentlyDropped: ticketer is killed
// (SIGKILL, a real process) while Jira is working on an event's create, on
// every one of the event's MAX_DELIVER deliveries. Jira created nothing
// (the request died with the process). A healthy ticketer then starts. The
// design's guarantees allow two ends for that event: a ticket, or an entry
// in FORMS_DLQ ("nothing lost", "every failure visible and re-playable").
// Neither is also an answer: the consumer has given up on the event
// (MaxDeliver reached on an ack timeout), nobody dead-letters it, and it
// sits in FORMS unacknowledged and unflagged for ever.
func TestLastDeliveryLostToACrashIsNotSilentlyDropped(t *testing.T) {
	integration(t)
	bin := buildBinary(t, "ticketer")
	ns := localnats.StartTB(t)
	sb, _ := sandbox(t, jirasandbox.Options{})
	js := natsJS(t, ns.URL())
	ensureForms(t, js)

	// Bulk creates hang (as with a slow Jira) until the client goes away,
	// then nothing is created: the sandbox's own Latency semantics, applied
	// to creates only so that the metadata call stays fast.
	var hold atomic.Bool
	hold.Store(true)
	arrived := make(chan struct{}, 16)
	wrap := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hold.Load() && r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/issue/bulk") {
			// Read the body: only then does net/http notice the client
			// leaving (and end r.Context()).
			_, _ = io.Copy(io.Discard, r.Body)
			arrived <- struct{}{}
			<-r.Context().Done()
			return
		}
		sb.ServeHTTP(w, r)
	}))
	t.Cleanup(wrap.Close)

	env := ticketerEnv(ns.URL(), wrap.URL, mappingFile(t, "mapping.yaml"))
	env["MAX_DELIVER"] = "2"
	env["BACKOFF"] = "1s"
	env["ACK_WAIT"] = "1s"
	env["BATCH_SIZE"] = "1"
	env["CONCURRENCY"] = "1"
	// Short, so that the second delivery may take the first one's claim
	// over (its RecheckAfter passed, the search empty) and create again.
	env["JIRA_TIMEOUT"] = "1s"
	env["RECONCILE_DELAY"] = "500ms"

	ev := eventOf(samples(t)[0], "crash on every delivery")
	publishEvent(t, js, ev, ev.GetHash())

	for delivery := 1; delivery <= 2; delivery++ {
		p := startBinary(t, fmt.Sprintf("ticketer-%d", delivery), bin, env)
		select {
		case <-arrived:
		case <-time.After(20 * time.Second):
			t.Fatalf("delivery %d: no create reached Jira within 20 s", delivery)
		}
		p.kill(t)
		t.Logf("delivery %d: ticketer killed while Jira was creating", delivery)
	}
	if n := len(sb.Issues()); n != 0 {
		t.Fatalf("%d tickets after two killed creates, want 0 (the sandbox creates nothing for a request whose client left)", n)
	}

	hold.Store(false)
	healthy := startBinary(t, "ticketer-healthy", bin, env)
	label := "cowjacket-" + ev.GetHash()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && len(sb.IssueByLabel(label)) == 0 && len(dlq(t, js)) == 0 {
		time.Sleep(100 * time.Millisecond)
	}
	tickets, dead := len(sb.IssueByLabel(label)), len(dlq(t, js))
	if tickets+dead != 1 {
		info := consumerInfo(t, js)
		state := "?"
		if info != nil {
			state = fmt.Sprintf("consumer: %d pending, %d ack pending, %d redelivered, ack floor stream seq %d",
				info.NumPending, info.NumAckPending, info.NumRedelivered, info.AckFloor.Stream)
		}
		record := "none"
		if kv, err := js.KeyValue(context.Background(), stream.TicketsBucket); err == nil {
			if e, err := kv.Get(context.Background(), ev.GetHash()); err == nil {
				record = string(e.Value())
			}
		}
		t.Errorf("after its last delivery was lost to a crash, the event has %d ticket(s) and %d dead letter(s), want exactly one of them; %s; FORMS_TICKETS record: %s",
			tickets, dead, state, record)
	}
	if healthy.exited() {
		t.Errorf("the healthy ticketer exited: %v", healthy.err)
	}
}

// TestTwoTicketersKilledAmidUnknownOutcomes: two ticketer processes share
// the consumer while Jira answers 500 to a quarter of the creates it did
// perform, its search lags 1.5 s, and every request takes 100 ms. Each
// process is SIGKILLed once right after Jira created a bulk of its issues
// (before the answer, so before any record), and comes back with a
// different RECONCILE_DELAY (one longer, one shorter, both above the search
// lag). Meanwhile every event is published a second time under another
// Nats-Msg-Id: a re-send after the stream's duplicate window, which only
// the FORMS_TICKETS record can collapse. Every request must end as exactly
// one ticket, with nothing dead-lettered.
func TestTwoTicketersKilledAmidUnknownOutcomes(t *testing.T) {
	integration(t)
	bin := buildBinary(t, "ticketer")
	ns := localnats.StartTB(t)
	// The search lag outlasts the redelivery of a killed process's events
	// (ACK_WAIT) but not RECONCILE_DELAY: an empty search is then a lie
	// that only the claim's RecheckAfter protects against.
	sb, _ := sandbox(t, jirasandbox.Options{CreatedBut500Rate: 0.25, SearchDelay: 1500 * time.Millisecond,
		Latency: 100 * time.Millisecond, Seed: 7})
	js := natsJS(t, ns.URL())
	ensureForms(t, js)

	base := ticketerEnv(ns.URL(), "", mappingFile(t, "mapping.yaml"))
	base["BATCH_SIZE"] = "5"
	base["CONCURRENCY"] = "2"
	base["ACK_WAIT"] = "1s"
	base["BACKOFF"] = "500ms,1s"
	base["MAX_DELIVER"] = "20"
	base["JIRA_TIMEOUT"] = "2s"
	base["RECONCILE_DELAY"] = "2s"
	base["RETRY_WINDOW"] = "10s"

	type instance struct {
		name    string
		killAt  int32  // the bulk create after which it dies
		restart string // RECONCILE_DELAY of its second life
		url     string
		cur     atomic.Pointer[osProc]
		bulks   atomic.Int32
		once    sync.Once
		killed  chan struct{}
	}
	insts := []*instance{
		{name: "a", killAt: 2, restart: "3s", killed: make(chan struct{})},
		{name: "b", killAt: 3, restart: "1800ms", killed: make(chan struct{})},
	}
	for _, in := range insts {
		// Each process talks to Jira through its own door, so the test knows
		// whose bulk create it is.
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/issue/bulk") && in.bulks.Add(1) == in.killAt {
				rec := httptest.NewRecorder()
				sb.ServeHTTP(rec, r) // Jira does the work (or answers 500 having done it)
				in.once.Do(func() {
					if p := in.cur.Load(); p != nil {
						_ = p.cmd.Process.Signal(syscall.SIGKILL)
					}
					close(in.killed)
				})
				http.Error(w, "connection lost", http.StatusBadGateway)
				return
			}
			sb.ServeHTTP(w, r)
		}))
		t.Cleanup(srv.Close)
		in.url = srv.URL
	}

	s := samples(t)
	const n = 60
	evs := make([]*formsv1.FormSubmission, n)
	rows := make([]row, n)
	for i := range evs {
		evs[i] = eventOf(s[(i*7)%len(s)], fmt.Sprintf("two ticketers, request %d", i))
		rows[i] = row{hash: evs[i].GetHash()}
		publishEvent(t, js, evs[i], evs[i].GetHash())
	}

	for _, in := range insts {
		env := maps.Clone(base)
		env["JIRA_URL"] = in.url
		in.cur.Store(startBinary(t, "ticketer-"+in.name, bin, env))
	}
	resent := false
	for _, in := range insts {
		select {
		case <-in.killed:
		case <-time.After(30 * time.Second):
			t.Fatalf("ticketer-%s never reached its bulk create #%d", in.name, in.killAt)
		}
		first := in.cur.Load()
		<-first.done
		t.Logf("ticketer-%s killed after Jira created its bulk #%d (%d tickets so far); restarting with RECONCILE_DELAY=%s",
			in.name, in.killAt, len(sb.Issues()), in.restart)
		env := maps.Clone(base)
		env["JIRA_URL"] = in.url
		env["RECONCILE_DELAY"] = in.restart
		in.cur.Store(startBinary(t, "ticketer-"+in.name+"-restarted", bin, env))
		if !resent {
			// The same requests again, as if re-sent after the duplicate window.
			for _, ev := range evs {
				publishEvent(t, js, ev, "resent-after-window:"+ev.GetHash())
			}
			resent = true
		}
	}

	want := map[string]bool{}
	for _, r := range rows {
		want[r.label()] = true
	}
	testsupport.WaitFor(t, "a ticket per request and the consumer drained", 60*time.Second, func() bool {
		covered := 0
		for l := range ticketsByLabel(sb) {
			if want[l] {
				covered++
			}
		}
		return covered == n && drained(t, js)
	})
	time.Sleep(1500 * time.Millisecond) // a late duplicate would show now
	checkOneTicketEach(t, sb, rows)
	if d := dlq(t, js); len(d) != 0 {
		t.Errorf("%d dead letters, want 0; first: %v", len(d), d[0].Header)
	}
	for _, in := range insts {
		if p := in.cur.Load(); p.exited() {
			t.Errorf("ticketer-%s (restarted) exited: %v", in.name, p.err)
		}
	}
	t.Logf("%d tickets for %d requests published twice; %d Jira requests", len(sb.Issues()), n, len(sb.Requests()))
}

// TestCaptureKilledThreeTimesDuringLoad: capture as a real process is
// SIGKILLed three times while single-row commits keep coming as fast as one
// connection can make them (so rows are in flight at each kill), and is
// restarted at once. At each kill the slot's confirmed_flush_lsn is read:
// every row committed at or before it must already be in FORMS (capture
// may confirm only what JetStream stored). At the end every committed row
// is in FORMS exactly once, and a graceful stop confirms the slot past the
// last commit.
func TestCaptureKilledThreeTimesDuringLoad(t *testing.T) {
	integration(t)
	bin := buildBinary(t, "capture")
	ns := localnats.StartTB(t)
	dsn := database(t)
	js := natsJS(t, ns.URL())
	c, watch := connect(t, dsn), connect(t, dsn)
	ctx := context.Background()

	env := captureEnv(dsn, ns.URL())
	cur := startBinary(t, "capture-1", bin, env)
	testsupport.WaitFor(t, "capture streaming from the slot", 20*time.Second, func() bool { return walsenderPID(watch) != 0 })

	const total = 2400
	rows := distinctRows(t, "capture kill -9", total)
	// after[i] is an LSN at or beyond the end of row i's commit; done
	// counts the rows committed (and their after set).
	after := make([]pglogrepl.LSN, total)
	var done atomic.Int64
	insertErr := make(chan error, 1)
	go func() {
		defer close(insertErr)
		tick := time.NewTicker(time.Second / 600)
		defer tick.Stop()
		for i, r := range rows {
			<-tick.C
			if err := insert(ctx, c, r); err != nil {
				insertErr <- fmt.Errorf("insert row %d: %w", i, err)
				return
			}
			var s string
			if err := c.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn()::text`).Scan(&s); err != nil {
				insertErr <- err
				return
			}
			after[i], _ = pglogrepl.ParseLSN(s)
			done.Add(1)
		}
	}()

	// Each kill comes while the capture of the moment has rows in hand: the
	// first live; the second after a second of NATS outage (rows received
	// from PostgreSQL, none acknowledged); the third while catching up
	// after the restart.
	for k, at := range []uint64{300, 700, 1300} {
		testsupport.WaitFor(t, fmt.Sprintf("%d rows in FORMS", at), 30*time.Second, func() bool { return formsCount(t, js) >= at })
		outage := k == 1
		if outage {
			ns.Shutdown()
			time.Sleep(time.Second)
		}
		cur.kill(t)
		confirmed := slotConfirmed(t, watch)
		n := int(done.Load()) // every row committed after the kill lies beyond confirmed
		if outage {
			if err := ns.Restart(); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(300 * time.Millisecond) // publishes already on the wire land
		stored := formsHashes(t, js)
		var missing []string
		inFlight := 0
		for j := range n {
			if stored[rows[j].hash] > 0 {
				continue
			}
			inFlight++
			if after[j] <= confirmed {
				missing = append(missing, fmt.Sprintf("row %d (committed by %s)", j, after[j]))
			}
		}
		t.Logf("kill -9 #%d (NATS down: %v) after %d commits: slot confirmed %s; %d committed rows not (yet) in FORMS",
			k+1, outage, n, confirmed, inFlight)
		if len(missing) > 0 {
			t.Errorf("kill #%d: the slot is confirmed to %s but %d rows committed before it are not in FORMS: %v",
				k+1, confirmed, len(missing), head(missing))
		}
		cur = startBinary(t, fmt.Sprintf("capture-%d", k+2), bin, env)
	}
	if err := <-insertErr; err != nil {
		t.Fatal(err)
	}

	testsupport.WaitFor(t, "every committed row in FORMS", 30*time.Second, func() bool { return len(formsHashes(t, js)) >= total })
	time.Sleep(500 * time.Millisecond)
	stored := formsHashes(t, js)
	var missing, twice []string
	for i, r := range rows {
		switch n := stored[r.hash]; {
		case n == 0:
			missing = append(missing, fmt.Sprint(i))
		case n > 1:
			twice = append(twice, fmt.Sprintf("%d×%d", i, n))
		}
	}
	if len(missing)+len(twice) > 0 || len(stored) != total {
		t.Errorf("FORMS holds %d distinct rows for %d committed: missing %v, more than once %v", len(stored), total, head(missing), head(twice))
	}
	if err := cur.term(t); err != nil {
		t.Errorf("capture exited with %v after SIGTERM", err)
	}
	if final := slotConfirmed(t, watch); final < after[total-1] {
		t.Errorf("after a graceful stop with everything stored, the slot is confirmed only to %s, below the last commit (%s)", final, after[total-1])
	}
}

func slotConfirmed(t *testing.T, c *pgx.Conn) pglogrepl.LSN {
	t.Helper()
	var s string
	if err := c.QueryRow(context.Background(),
		`SELECT coalesce(confirmed_flush_lsn::text, '0/0') FROM pg_replication_slots WHERE slot_name = 'cowjacket'`).Scan(&s); err != nil {
		t.Fatal(err)
	}
	lsn, err := pglogrepl.ParseLSN(s)
	if err != nil {
		t.Fatal(err)
	}
	return lsn
}

// formsCount is the number of messages in FORMS.
func formsCount(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream.Forms)
	if err != nil {
		return 0
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0
	}
	return info.State.Msgs
}

// formsHashes counts FORMS messages per record hash.
func formsHashes(t *testing.T, js jetstream.JetStream) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out := map[string]int{}
	st, err := js.Stream(ctx, stream.Forms)
	if err != nil {
		return out
	}
	info, err := st.Info(ctx)
	if err != nil || info.State.Msgs == 0 {
		return out
	}
	c, err := js.OrderedConsumer(ctx, stream.Forms, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	got := uint64(0)
	for got < info.State.Msgs {
		batch, err := c.FetchNoWait(500)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			got++
			out[stream.HashOf(m.Headers())]++
		}
		if n == 0 {
			if ctx.Err() != nil {
				t.Fatalf("read FORMS: %d of %d messages", got, info.State.Msgs)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return out
}

// TestTicketerKeepsCapturesDuplicateWindow: an operator sets capture's
// DUPLICATE_WINDOW (stream FORMS's duplicate window, design guarantee 2's
// first line of defence). Starting ticketer must not silently change it.
func TestTicketerKeepsCapturesDuplicateWindow(t *testing.T) {
	integration(t)
	dsn := database(t)
	ns := localnats.StartTB(t)
	_, jiraURL := sandbox(t, jirasandbox.Options{})
	js := natsJS(t, ns.URL())

	cenv := captureEnv(dsn, ns.URL())
	cenv["DUPLICATE_WINDOW"] = "48h"
	start(t, "capture", capture.Run, cenv)
	c := connect(t, dsn)
	testsupport.WaitFor(t, "capture streaming", 20*time.Second, func() bool { return walsenderPID(c) != 0 })
	if d := streamInfo(t, js, stream.Forms).Config.Duplicates; d != 48*time.Hour {
		t.Fatalf("capture with DUPLICATE_WINDOW=48h made FORMS with a %v duplicate window", d)
	}
	tk := start(t, "ticketer", ticketer.Run, ticketerEnv(ns.URL(), jiraURL, mappingFile(t, "mapping.yaml")))
	waitStarted(t, tk)
	if d := streamInfo(t, js, stream.Forms).Config.Duplicates; d != 48*time.Hour {
		t.Errorf("after ticketer started, FORMS's duplicate window is %v; capture's DUPLICATE_WINDOW=48h was silently replaced", d)
	}
}
