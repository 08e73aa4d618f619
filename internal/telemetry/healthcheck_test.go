package telemetry

import (
	"strings"
	"testing"
)

func TestHealthURL(t *testing.T) {
	for addr, want := range map[string]string{
		":9102":          "http://127.0.0.1:9102/healthz",
		"0.0.0.0:8080":   "http://127.0.0.1:8080/healthz",
		"[::]:9102":      "http://127.0.0.1:9102/healthz",
		"localhost:9999": "http://localhost:9999/healthz",
		"10.1.2.3:9101":  "http://10.1.2.3:9101/healthz",
	} {
		if got, err := HealthURL(addr); err != nil || got != want {
			t.Errorf("%q: %q %v, want %q", addr, got, err, want)
		}
	}
	for _, bad := range []string{"off", "", "9102", ":0"} {
		if _, err := HealthURL(bad); err == nil || !strings.Contains(err.Error(), "HTTP_ADDR") {
			t.Errorf("%q: err %v", bad, err)
		}
	}
}
