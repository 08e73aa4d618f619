package ticketer

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// healthcheckTimeout bounds `ticketer healthcheck` (the container runtime
// has its own timeout too; this one makes the answer prompt).
const healthcheckTimeout = 2 * time.Second

// runHealthcheck is `ticketer healthcheck`: GET /healthz of the service
// running on HTTP_ADDR's port on this host; nil (exit 0) on 200. The
// distroless image has no curl, so docker-compose runs this.
func runHealthcheck(ctx context.Context, env *Env, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("healthcheck: unexpected arguments %q", args)
	}
	url, err := healthURL(env.Config.HTTPAddr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, healthcheckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
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
		return fmt.Errorf("healthcheck: %s answered %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	fmt.Fprintf(env.Stdout, "healthy: %s answered %s\n", url, strings.TrimSpace(string(body)))
	return nil
}

// healthURL is http://127.0.0.1:<port of addr>/healthz.
func healthURL(addr string) (string, error) {
	if addr == "" || addr == "off" {
		return "", fmt.Errorf("HTTP_ADDR: is %q, so there is no /healthz to check", addr)
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" || port == "0" {
		return "", fmt.Errorf("HTTP_ADDR: want [host]:port, got %q", addr)
	}
	return "http://" + net.JoinHostPort("127.0.0.1", port) + "/healthz", nil
}
