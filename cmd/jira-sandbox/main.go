// Command jira-sandbox serves the Jira Cloud sandbox on its own: the Jira
// endpoints the ticketer calls, validated against project CP's fixtures,
// and a page listing the tickets received.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cowjacket/formjira/internal/jirasandbox"
)

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "jira-sandbox:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("jira-sandbox", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		addr        = fs.String("addr", "127.0.0.1:8089", "listen address")
		email       = fs.String("email", "", "basic-auth email to require (env SANDBOX_EMAIL); empty with no token = no auth")
		token       = fs.String("token", "", "basic-auth API token to require (env SANDBOX_TOKEN)")
		pat         = fs.String("pat", "", "bearer personal access token to accept (env SANDBOX_PAT)")
		perSec      = fs.Float64("rate", 0, "requests per second before 429 (0 = unlimited)")
		burst       = fs.Int("burst", 10, "rate-limit burst")
		err5xx      = fs.Float64("5xx", 0, "fraction of API requests answered 500/502/503")
		createdBut  = fs.Float64("created-but-500", 0, "fraction of creates that create the issue but answer 500")
		latency     = fs.Duration("latency", 0, "latency added to every API call")
		searchDelay = fs.Duration("search-delay", 0, "how long a new issue stays invisible to JQL search")
		seed        = fs.Int64("seed", time.Now().UnixNano(), "seed for injected faults")
		stateFile   = fs.String("state", "", "file keeping tickets and the key counter across restarts (empty = in memory)")
	)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	// Secrets come from the environment unless given as flags; they are not
	// flag defaults so that -help never prints them.
	for _, p := range []struct {
		v   *string
		env string
	}{{email, "SANDBOX_EMAIL"}, {token, "SANDBOX_TOKEN"}, {pat, "SANDBOX_PAT"}} {
		if *p.v == "" {
			*p.v = getenv(p.env)
		}
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	log := slog.New(slog.NewTextHandler(stderr, nil))
	sb := jirasandbox.New(jirasandbox.Options{
		Email: *email, APIToken: *token, PAT: *pat,
		RatePerSecond: *perSec, Burst: *burst,
		Error5xxRate: *err5xx, CreatedBut500Rate: *createdBut,
		Latency: *latency, SearchDelay: *searchDelay,
		Seed: *seed, StateFile: *stateFile, Logger: log,
	})
	return sb.ListenAndServe(ctx, *addr, func(url string) {
		fmt.Fprintf(stdout, "jira sandbox listening on %s (tickets: %s/)\n", url, url)
		log.Info("jira sandbox ready", "url", url, "auth", *email != "" || *token != "" || *pat != "")
	})
}
