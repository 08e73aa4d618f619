// Package telemetry is the HTTP side every binary serves on HTTP_ADDR:
// Prometheus /metrics, /healthz (the process is alive) and /readyz (it is
// doing its job: connected and consuming/streaming), plus the JSON logger.
package telemetry

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cowjacket/formjira/internal/config"
)

// Vars are the variables of the logger (HTTP_ADDR has a default per binary:
// each declares its own).
var Vars = []config.Var{
	{Name: "LOG_LEVEL", For: config.Both, Default: "info", Help: "debug, info, warn or error"},
}

// NewLogger is the JSON slog logger both binaries use.
func NewLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}

// NewRegistry is a registry with the Go and process collectors.
func NewRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Handler serves /metrics, /healthz and /readyz; ready reports why the
// service is not ready (nil = ready).
func Handler(reg *prometheus.Registry, ready func() error) http.Handler {
	return NotedHandler(reg, func() (string, error) {
		if ready == nil {
			return "", nil
		}
		return "", ready()
	})
}

// NotedHandler is Handler whose readiness may carry a note for a ready
// service ("ready; Jira unreachable …"): what operators should know that
// no restart or rollout of this process would change.
func NotedHandler(reg *prometheus.Registry, ready func() (note string, err error)) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		note, err := ready()
		if err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		if note != "" {
			note = "; " + note
		}
		_, _ = io.WriteString(w, "ready"+note+"\n")
	})
	return mux
}

// Serve listens on addr until ctx is done. An empty addr or "off" disables it.
// The listener is opened before returning so a port clash is a start-up error.
func Serve(ctx context.Context, addr string, h http.Handler, log *slog.Logger) (wait func() error, err error) {
	if addr == "" || addr == "off" {
		return func() error { return nil }, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		done <- err
	}()
	log.Info("http listening", "addr", ln.Addr().String())
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	return func() error { return <-done }, nil
}
