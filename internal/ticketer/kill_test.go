package ticketer_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cowjacket/formjira/internal/jirasandbox"
	"github.com/cowjacket/formjira/internal/ticketer/ticketertest"
)

// TestKilledBetweenCreateAndRecord builds the real binary and SIGKILLs it
// while Jira is creating (a bulk of issues; in JSM mode one request),
// before the answer (and so the KV record) can reach it. The restarted
// ticketer must find those tickets (by label; a JSM request, whose labels
// only follow in an edit, by the record hash in its description) instead
// of creating them again, and lose nothing.
func TestKilledBetweenCreateAndRecord(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: real nats-server and Jira sandbox")
	}
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "ticketer")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/ticketer").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		name, mapping, createPath string
		events                    int
	}{
		{"platform", "../../deploy/mapping.yaml", "/issue/bulk", 80},
		{"jsm", "../../deploy/mapping-jsm.yaml", "/rest/servicedeskapi/request", 20},
	} {
		t.Run(tc.name, func(t *testing.T) { killedBetweenCreateAndRecord(t, bin, tc.mapping, tc.createPath, tc.events) })
	}
}

func killedBetweenCreateAndRecord(t *testing.T, bin, mappingFile, createPath string, events int) {
	h := newHarness(t, jirasandbox.Options{SearchDelay: 200 * time.Millisecond})
	h.Env["MAPPING_FILE"], _ = filepath.Abs(mappingFile)

	var proc atomic.Pointer[os.Process]
	var creates atomic.Int32
	killed := make(chan struct{})
	var once sync.Once
	// The third create reaches Jira and creates its issues; then the
	// process dies before it reads the answer.
	wrap := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, createPath) && creates.Add(1) == 3 {
			rec := httptest.NewRecorder()
			h.SB.ServeHTTP(rec, r)
			once.Do(func() {
				if p := proc.Load(); p != nil {
					_ = p.Signal(syscall.SIGKILL)
				}
				close(killed)
			})
			http.Error(w, "gone", http.StatusBadGateway)
			return
		}
		h.SB.ServeHTTP(w, r)
	}))
	t.Cleanup(wrap.Close)
	h.Env["JIRA_URL"] = wrap.URL
	h.Env["BATCH_SIZE"] = "10"
	h.Env["CONCURRENCY"] = "1"

	start := func() *exec.Cmd {
		cmd := exec.Command(bin)
		cmd.Dir = t.TempDir()
		for k, v := range h.Env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		cmd.Stderr = h.Logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		proc.Store(cmd.Process)
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd
	}
	evs := ticketertest.SampleEvents(t)[:events]
	h.Publish(evs...)
	first := start()
	select {
	case <-killed:
	case <-time.After(30 * time.Second):
		t.Fatal("the third create never came")
	}
	_ = first.Wait()
	createdBeforeKill := len(h.SB.Issues())
	t.Logf("%d tickets when killed", createdBeforeKill)

	second := start()
	want := ticketertest.DistinctHashes(evs)
	h.WaitFor("all tickets after restart", 60*time.Second, func() bool { return len(h.SB.Issues()) >= want && h.Pending() == 0 })
	time.Sleep(300 * time.Millisecond)
	_ = second.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- second.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ticketer exited with %v after SIGTERM", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("ticketer did not exit within 10s of SIGTERM")
	}
	if strings.Contains(createPath, "servicedesk") {
		h.AssertOneRequestPerHash(evs)
	} else {
		h.AssertOneTicketPerHash(evs)
	}
}
