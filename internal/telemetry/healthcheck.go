package telemetry

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// healthTimeout bounds the whole health check (the container runtime has
// its own timeout too, 3 s in docker-compose.yml).
const healthTimeout = 2 * time.Second

// Healthcheck GETs /healthz of the service running in this container (its
// HTTP_ADDR) and fails unless the answer is 200: the distroless image has
// no curl, so docker-compose runs `capture healthcheck` / `ticketer
// healthcheck`.
func Healthcheck(ctx context.Context, httpAddr string, stdout io.Writer) error {
	u, err := HealthURL(httpAddr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s: %s", u, resp.Status, strings.TrimSpace(string(body)))
	}
	fmt.Fprintf(stdout, "healthy: %s %s\n", u, strings.TrimSpace(string(body)))
	return nil
}

// healthURL is the /healthz URL for a listen address: an unspecified host
// (":9101", "0.0.0.0:9101", "[::]:9101") is reached on 127.0.0.1.
func HealthURL(httpAddr string) (string, error) {
	if httpAddr == "" || httpAddr == "off" {
		return "", fmt.Errorf("HTTP_ADDR: is %q, so there is no /healthz to check", httpAddr)
	}
	host, port, err := net.SplitHostPort(httpAddr)
	if err != nil {
		return "", fmt.Errorf("HTTP_ADDR: want host:port, got %q", httpAddr)
	}
	if port == "" || port == "0" {
		return "", fmt.Errorf("HTTP_ADDR: port %q is chosen at random, so healthcheck cannot find it", port)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/healthz", nil
}
