package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/capture"
	"github.com/cowjacket/formjira/internal/jirasandbox"
	"github.com/cowjacket/formjira/internal/localnats"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/testsupport"
	"github.com/cowjacket/formjira/internal/ticketer"
)

// TestScaleOut is issue 4 §4: a 3-node JetStream cluster with R3 streams,
// three ticketer replicas on the one durable consumer, an active and a
// standby capture on one slot. Mid-load a NATS node dies, then the active
// capture is killed (-9); the standby takes the slot over. Every row still
// becomes exactly one ticket.
//
// Two victims: the FORMS stream leader (in-flight publish acks are lost with
// it) and a plain follower (neither the meta leader nor the FORMS leader).
func TestScaleOut(t *testing.T) {
	integration(t)
	for _, victim := range []string{"forms-leader", "follower"} {
		t.Run(victim, func(t *testing.T) { scaleOut(t, victim) })
	}
}

func scaleOut(t *testing.T, victim string) {
	const (
		total    = 1000
		perSec   = 100
		killNode = 300 // rows committed before the NATS node dies
		killCap  = 600 // … and before the active capture is killed
	)
	cl := localnats.StartClusterTB(t, 3)
	dsn := database(t)
	sb, jiraURL := sandbox(t, jirasandbox.Options{Latency: 10 * time.Millisecond})

	cenv := captureEnv(dsn, cl.URLs())
	cenv["STREAM_REPLICAS"] = "3"
	tenv := ticketerEnv(cl.URLs(), jiraURL, mappingFile(t, "mapping.yaml"))
	tenv["STREAM_REPLICAS"] = "3"
	tenv["CONCURRENCY"] = "2"

	c := connect(t, dsn)
	active := start(t, "capture-active", capture.Run, cenv)
	testsupport.WaitFor(t, "the active capture streaming", 30*time.Second, func() bool { return walsenderPID(c) != 0 })
	activePID := walsenderPID(c)
	standby := start(t, "capture-standby", capture.Run, cenv)
	// The replicas start one after the other, so that start-up retries
	// (TestTicketerReplicasStartTogether) do not blur the faults measured
	// here.
	var tickets []*proc
	for i := range 3 {
		p := start(t, fmt.Sprintf("ticketer-%d", i+1), ticketer.Run, tenv)
		waitStarted(t, p)
		tickets = append(tickets, p)
	}
	testsupport.WaitFor(t, "the standby capture to report standby", 30*time.Second, func() bool {
		return strings.Contains(standby.logs.String(), "standby")
	})

	js := natsJS(t, cl.URLs())
	ctx := context.Background()
	testsupport.WaitFor(t, "the ticketer consumer", 30*time.Second, func() bool {
		_, err := js.Consumer(ctx, stream.Forms, stream.TicketerConsumer)
		return err == nil
	})
	if info := streamInfo(t, js, stream.Forms); info.Config.Replicas != 3 {
		t.Fatalf("FORMS has %d replicas, want 3", info.Config.Replicas)
	}

	rows := distinctRows(t, "scale-out "+victim, total)
	watch := connect(t, dsn) // c inserts; a pgx.Conn is not shared
	takeover := make(chan time.Duration, 1)
	tick := time.NewTicker(time.Second / perSec)
	defer tick.Stop()
	begin := time.Now()
	for i, r := range rows {
		<-tick.C
		switch i {
		case killNode:
			n := pickVictim(t, cl, js, victim)
			t.Logf("row %d: killing NATS node n%d (%s; meta leader n%d)", i, n+1, victim, cl.MetaLeader()+1)
			cl.Kill(n)
		case killCap:
			t.Logf("row %d: kill -9 of the active capture", i)
			active.abandon(t)
			killed := time.Now()
			go func() {
				defer close(takeover)
				for time.Since(killed) < 30*time.Second {
					if pid := walsenderPID(watch); pid != 0 && pid != activePID {
						takeover <- time.Since(killed)
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
			}()
		}
		if err := insert(ctx, c, r); err != nil {
			t.Fatalf("insert row %d: %v", i, err)
		}
	}
	loaded := time.Since(begin)
	if d, ok := <-takeover; ok {
		t.Logf("the standby capture took the slot %v after the kill", d.Round(time.Millisecond))
	} else {
		t.Errorf("the standby capture did not take the slot within 30 s of the kill")
	}
	t.Logf("%d rows committed in %v", total, loaded.Round(time.Millisecond))

	want := map[string]bool{}
	for _, r := range rows {
		want[r.label()] = true
	}
	covered := func() int {
		n := 0
		for l := range ticketsByLabel(sb) {
			if want[l] {
				n++
			}
		}
		return n
	}
	testsupport.WaitFor(t, fmt.Sprintf("a ticket for each of the %d rows", total), 90*time.Second, func() bool { return covered() >= total })
	t.Logf("all %d rows ticketed %v after the last commit", total, (time.Since(begin) - loaded).Round(time.Millisecond))
	time.Sleep(2 * time.Second) // late duplicates would show now
	checkOneTicketEach(t, sb, rows, append([]*proc{active, standby}, tickets...)...)

	// What the faults cost, from the services' own logs.
	count := func(ps []*proc, msg string) int {
		n := 0
		for _, p := range ps {
			n += strings.Count(p.logs.String(), msg)
		}
		return n
	}
	caps := []*proc{active, standby}
	t.Logf("capture: %d publish retries, %d reconnects; ticketers: %d transient failures, %d claims taken over, %d pull errors, %d skipped as already ticketed",
		count(caps, "publish failed; retrying"), count(caps, "NATS reconnected"),
		count(tickets, `"msg":"transient failure"`), count(tickets, "taking over a claim"),
		count(tickets, "pull from FORMS failed"), skippedCount(tickets))
	if pid := walsenderPID(c); pid == 0 || pid == activePID {
		t.Errorf("walsender pid %d after the kill (the killed capture's was %d): the standby did not take the slot", pid, activePID)
	}
	if !strings.Contains(standby.logs.String(), `"msg":"streaming"`) {
		t.Errorf("the standby capture never logged streaming")
	}
	for _, p := range append(tickets, standby) {
		if p.exited() {
			t.Errorf("%s exited early: %v", p.name, p.err)
		}
	}
	if d := dlq(t, js); len(d) != 0 {
		t.Errorf("%d dead letters, want 0; first: %v", len(d), d[0].Header)
	}
}

func streamInfo(t *testing.T, js jetstream.JetStream, name string) *jetstream.StreamInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// pickVictim is the index of the node to kill: the FORMS stream leader, or
// a node that leads neither the meta group nor FORMS.
func pickVictim(t *testing.T, cl *localnats.Cluster, js jetstream.JetStream, victim string) int {
	t.Helper()
	info := streamInfo(t, js, stream.Forms)
	leader := -1
	for i := range cl.Size() {
		if info.Cluster != nil && cl.Node(i).Server().Name() == info.Cluster.Leader {
			leader = i
		}
	}
	if leader < 0 {
		t.Fatalf("FORMS has no leader: %+v", info.Cluster)
	}
	if victim == "forms-leader" {
		return leader
	}
	meta := cl.MetaLeader()
	for i := range cl.Size() {
		if i != meta && i != leader {
			return i
		}
	}
	for i := range cl.Size() {
		if i != meta {
			return i
		}
	}
	t.Fatal("no follower to kill")
	return -1
}

// waitStarted waits until a ticketer is consuming; it fails the test if the
// ticketer exits instead.
func waitStarted(t *testing.T, p *proc) {
	t.Helper()
	testsupport.WaitFor(t, p.name+" consuming", 30*time.Second, func() bool {
		return strings.Contains(p.logs.String(), "ticketer starting") || p.exited()
	})
	if p.exited() {
		t.Fatalf("%s exited at start-up: %v", p.name, p.err)
	}
}

// TestTicketerReplicasStartTogether: N ticketer replicas rolled out at once
// against a cluster where FORMS, FORMS_DLQ and FORMS_TICKETS do not exist
// yet (a first deploy, or `kubectl scale` after a wipe). nats-server leaves
// all but one of concurrent creates of the same R3 stream unanswered, so
// each of the others times out; ticketer retries its set-up (service.go
// setup: per-attempt timeout, capped backoff with jitter) and every replica
// must come up. Before that fix all but one exited (see BENCHMARKS.md).
func TestTicketerReplicasStartTogether(t *testing.T) {
	integration(t)
	cl := localnats.StartClusterTB(t, 3)
	_, jiraURL := sandbox(t, jirasandbox.Options{})
	tenv := ticketerEnv(cl.URLs(), jiraURL, mappingFile(t, "mapping.yaml"))
	tenv["STREAM_REPLICAS"] = "3"
	var ps []*proc
	for i := range 3 {
		ps = append(ps, start(t, fmt.Sprintf("ticketer-%d", i+1), ticketer.Run, tenv))
	}
	for _, p := range ps {
		waitStarted(t, p)
	}
	retried := 0
	for _, p := range ps {
		retried += strings.Count(p.logs.String(), "JetStream not ready; retrying")
	}
	t.Logf("%d set-up retries among the 3 replicas", retried)
	for _, p := range ps {
		if strings.Contains(p.logs.String(), "daily counters off") {
			t.Errorf("%s runs without its daily counters (FORMS_STATS set-up lost the race)", p.name)
		}
	}
}

// skippedCount sums the "K skipped" of every "batch complete" line.
func skippedCount(ps []*proc) int {
	n := 0
	for _, p := range ps {
		for _, line := range strings.Split(p.logs.String(), "\n") {
			var ok, failed, skipped int
			if i := strings.Index(line, "batch complete: "); i >= 0 {
				if _, err := fmt.Sscanf(line[i:], "batch complete: %d successful, %d failed, %d skipped", &ok, &failed, &skipped); err == nil {
					n += skipped
				}
			}
		}
	}
	return n
}
