package capture

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/testsupport"
)

// NATS unreachable at start: capture keeps retrying and says so (a log
// line naming the redacted URL; /healthz healthy, /readyz not ready), then
// streams as soon as the server is there.
func TestStartsBeforeNATS(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	e := newEnv(t)
	e.NATS.Shutdown()
	addr := testsupport.FreeAddr(t)
	e.Vars["HTTP_ADDR"] = addr
	r := e.Start()

	testsupport.WaitFor(t, "the retry to be logged", 15*time.Second, func() bool {
		return strings.Contains(r.Logs.String(), "NATS unreachable")
	})
	// Served while waiting: healthy (a liveness probe must not restart
	// it), not ready.
	for path, want := range map[string]int{"/healthz": http.StatusOK, "/readyz": http.StatusServiceUnavailable} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatalf("%s while NATS is unreachable: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s answers %d while NATS is unreachable, want %d", path, resp.StatusCode, want)
		}
	}
	if err := e.NATS.Restart(); err != nil {
		t.Fatal(err)
	}
	c := e.Conn()
	e.WaitStreaming(c)
	if err := insertSamples(context.Background(), c, samples(t)[:5], nil); err != nil {
		t.Fatal(err)
	}
	waitMsgs(t, e.JS(), stream.Forms, 5, 20*time.Second)
}
