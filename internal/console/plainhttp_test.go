package console

import (
	"net"
	"testing"
)

// TestPlainHTTPWarning: plain HTTP on a non-loopback address without an
// https CONSOLE_URL (no proxy in front) is warned about at start.
func TestPlainHTTPWarning(t *testing.T) {
	for _, tc := range []struct {
		ip   string
		url  string
		warn bool
	}{
		{"127.0.0.1", "", false},
		{"::1", "", false},
		{"0.0.0.0", "", true},
		{"10.1.2.3", "http://console.example.com", true},
		{"0.0.0.0", "https://console.example.com", false},
	} {
		addr := &net.TCPAddr{IP: net.ParseIP(tc.ip), Port: 9103}
		if got := plainHTTPWarning(addr, tc.url) != ""; got != tc.warn {
			t.Errorf("%s with CONSOLE_URL %q: warning %v, want %v", tc.ip, tc.url, got, tc.warn)
		}
	}
}
