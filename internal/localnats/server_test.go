package localnats

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cowjacket/formjira/internal/testsupport"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func connect(t *testing.T, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

func createStream(t *testing.T, js jetstream.JetStream, replicas int) jetstream.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: "FORMS", Subjects: []string{"forms.>"}, Storage: jetstream.FileStorage, Replicas: replicas,
	})
	if err != nil {
		t.Fatalf("create stream: %v", err)
	}
	return st
}

// publish retries while the stream has no leader (a node just went away).
func publish(t *testing.T, js jetstream.JetStream, from, to int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := from; i < to; i++ {
		for {
			// Per-attempt timeout: a publish whose ack was lost with the
			// old leader would otherwise wait out the whole deadline.
			attempt, cancelAttempt := context.WithTimeout(ctx, time.Second)
			_, err := js.Publish(attempt, "forms.submitted", fmt.Appendf(nil, "m%d", i), jetstream.WithMsgID(fmt.Sprint(i)))
			cancelAttempt()
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("publish m%d: %v", i, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// readAll checks that the stream holds exactly m0…m(n-1), in order.
func readAll(t *testing.T, js jetstream.JetStream, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var st jetstream.Stream
	var err error
	for { // right after a failover the stream may briefly lack a leader
		if st, err = js.Stream(ctx, "FORMS"); err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("stream info: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := st.CachedInfo().State.Msgs; got != uint64(n) {
		t.Fatalf("stream holds %d messages, want %d", got, n)
	}
	for i := 0; i < n; i++ {
		msg, err := st.GetMsg(ctx, uint64(i+1))
		if err != nil {
			t.Fatalf("get message %d: %v", i+1, err)
		}
		if want := fmt.Sprintf("m%d", i); string(msg.Data) != want {
			t.Fatalf("message %d = %q, want %q", i+1, msg.Data, want)
		}
	}
}

func waitConnected(t *testing.T, nc *nats.Conn) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !nc.IsConnected() {
		if time.Now().After(deadline) {
			t.Fatalf("client did not reconnect: %v", nc.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRestartSameURLKeepsStream(t *testing.T) {
	t.Parallel()
	s := StartTB(t)
	url := s.URL()
	nc, js := connect(t, url)
	createStream(t, js, 1)
	publish(t, js, 0, 3)

	s.Shutdown()
	if s.Running() {
		t.Fatal("Running after Shutdown")
	}
	deadline := time.Now().Add(5 * time.Second)
	for nc.IsConnected() {
		if time.Now().After(deadline) {
			t.Fatal("client still connected to a stopped server")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if s.URL() != url {
		t.Fatalf("URL changed from %s to %s", url, s.URL())
	}
	waitConnected(t, nc) // the same client, reconnected by itself
	publish(t, js, 3, 5)
	readAll(t, js, 5)
}

func TestPersistentStoreDir(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "js")
	s, err := Start(Options{StoreDir: dir, ServerName: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	_, js := connect(t, s.URL())
	createStream(t, js, 1)
	publish(t, js, 0, 2)
	s.Close()
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("persistent store removed by Close: %v", err)
	}

	s, err = Start(Options{StoreDir: dir, ServerName: "demo"}) // new port, same data
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, js = connect(t, s.URL())
	readAll(t, js, 2)
}

func TestCloseRemovesTempStore(t *testing.T) {
	t.Parallel()
	var log testsupport.Buffer
	s, err := Start(Options{MaxPayload: 2048, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "Server is ready") {
		t.Errorf("Options.Log got no server output:\n%s", log.String())
	}
	nc, _ := connect(t, s.URL())
	if got := nc.MaxPayload(); got != 2048 {
		t.Errorf("MaxPayload = %d, want 2048", got)
	}
	dir := s.StoreDir()
	s.Close()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary store %s still there after Close (%v)", dir, err)
	}
}

func TestClusterSurvivesStreamLeaderLoss(t *testing.T) {
	t.Parallel()
	c := StartClusterTB(t, 3)
	_, js := connect(t, c.URLs())
	st := createStream(t, js, 3)
	publish(t, js, 0, 5)

	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	leader := -1
	for i := 0; i < c.Size(); i++ {
		if c.Node(i).Server().Name() == info.Cluster.Leader {
			leader = i
		}
	}
	if leader < 0 {
		t.Fatalf("stream leader %q is none of the nodes", info.Cluster.Leader)
	}
	c.Kill(leader)
	t0 := time.Now()
	publish(t, js, 5, 10)
	t.Logf("publish after kill took %v", time.Since(t0)) // two of three replicas still form a quorum
	readAll(t, js, 10)

	if err := c.Restart(leader); err != nil {
		t.Fatal(err)
	}
	if c.MetaLeader() < 0 {
		t.Fatal("no meta leader after restart")
	}
	readAll(t, js, 10)
}

func TestStartClusterRejectsOneNode(t *testing.T) {
	if _, err := StartCluster(1, Options{}); err == nil {
		t.Fatal("StartCluster(1) succeeded")
	}
}
