package testsupport

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FreeAddr is a 127.0.0.1 address with a port nobody listens on now.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// FreePort is FreeAddr's port.
func FreePort(tb testing.TB) int {
	tb.Helper()
	_, p, _ := net.SplitHostPort(FreeAddr(tb))
	n, _ := strconv.Atoi(p)
	return n
}

// WaitFor polls cond every 20 ms until it holds; after timeout the test
// fails naming what it waited for.
func WaitFor(tb testing.TB, what string, timeout time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Metric is the value of one sample line of a /metrics page, e.g.
// `capture_rows_published_total{result="stored"}`; -1 when absent.
func Metric(page, series string) float64 {
	for _, line := range strings.Split(page, "\n") {
		rest, ok := strings.CutPrefix(line, series+" ")
		if !ok {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64); err == nil {
			return v
		}
	}
	return -1
}

// Get is the status and body of GET http://addr/path; status 0 (and the
// error as body) when nothing answered.
func Get(addr, path string) (int, string) {
	c := http.Client{Timeout: 5 * time.Second}
	r, err := c.Get("http://" + addr + path)
	if err != nil {
		return 0, err.Error()
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return r.StatusCode, string(b)
}

// MetricAt is Metric of the /metrics page served on addr.
func MetricAt(addr, series string) float64 {
	_, page := Get(addr, "/metrics")
	return Metric(page, series)
}
