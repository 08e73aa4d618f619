// Command jira-sandbox serves the Jira Cloud sandbox on its own: the Jira
// endpoints the ticketer calls, validated against project CP's fixtures,
// and a page listing the tickets and customers received. Flags set the
// behaviours of Jira Cloud worth starting with; all of them, and the
// outage switch, can be changed while it runs: POST /sandbox/config.
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
		perSec      = fs.Float64("rate", 0, "requests per second of each endpoint before 429 (0 = unlimited); Jira Cloud limits each endpoint and method separately")
		burst       = fs.Int("burst", 10, "rate-limit burst of each endpoint")
		tenantRate  = fs.Float64("tenant-rate", 0, "requests per second of the whole site, all endpoints together (0 = unlimited)")
		tenantBurst = fs.Int("tenant-burst", 10, "burst of the site-wide limit")
		headers429  = fs.String("429-headers", "retry-after", "headers of a 429: retry-after (with X-RateLimit-*), reset (X-RateLimit-Reset and RateLimit-Reason only) or none")
		resetLayout = fs.String("reset-layout", "seconds", "X-RateLimit-Reset layout: seconds (2006-01-02T15:04:05Z) or minutes (2006-01-02T15:04Z)")
		err5xx      = fs.Float64("5xx", 0, "fraction of API requests answered 500/502/503")
		createdBut  = fs.Float64("created-but-500", 0, "fraction of creates that create the issue but answer 500")
		latency     = fs.Duration("latency", 0, "latency added to every API call")
		searchDelay = fs.Duration("search-delay", 0, "how long a new issue stays invisible to JQL search")
		shuffle     = fs.Bool("shuffle-bulk", false, "answer bulk creates' issues in random order (Jira promises no order)")
		bulkReject  = fs.Float64("bulk-reject-400", 0, "fraction of bulk creates refused as a whole with 400 and no element errors")
		strict      = fs.Bool("strict-customers", false, "JSM raiseOnBehalfOf must be an existing accountId")
		deskAccess  = fs.String("desk-access", "open", "service desk access with -strict-customers: open or restricted")
		noCustomers = fs.Bool("forbid-create-customer", false, "the bot may not create JSM customers (403)")
		noAdd       = fs.Bool("forbid-add-customer", false, "the bot may not add customers to the service desk (403)")
		hideEmails  = fs.Bool("hide-emails", false, "hide e-mail addresses from user search and JSM's customer list, as privacy settings do")
		denyCreate  = fs.String("deny-create", "", "refuse every create as without the Create issues permission: 403, 403-access or 400-project")
		anonymous   = fs.Bool("anonymous-fallback", false, "serve wrong or missing credentials as an anonymous user (200 with nothing in it) instead of 401")
		metaList    = fs.String("createmeta-list", "values", "createmeta's list key: values (Data Center), fields (Cloud) or results")
		typesList   = fs.String("issuetypes-list", "issueTypes", "createmeta issue types' list key: issueTypes or values")
		metaPage    = fs.Int("createmeta-page-size", 0, "largest createmeta page the site serves (0 = the documented 200)")
		seed        = fs.Int64("seed", time.Now().UnixNano(), "seed for injected faults")
		stateFile   = fs.String("state", "", "file keeping tickets, the key counter and customers across restarts (empty = in memory)")
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

	layouts := map[string]string{"seconds": jirasandbox.ResetLayoutSeconds, "minutes": jirasandbox.ResetLayoutMinutes}
	layout, ok := layouts[*resetLayout]
	if !ok {
		return fmt.Errorf("-reset-layout: want seconds or minutes, got %q", *resetLayout)
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	opts := jirasandbox.Options{
		Email: *email, APIToken: *token, PAT: *pat,
		RatePerSecond: *perSec, Burst: *burst, TenantRatePerSecond: *tenantRate, TenantBurst: *tenantBurst,
		RateLimitHeaders: jirasandbox.RateLimitHeaders(*headers429), RateLimitResetLayout: layout,
		Error5xxRate: *err5xx, CreatedBut500Rate: *createdBut,
		Latency: *latency, SearchDelay: *searchDelay,
		ShuffleBulk: *shuffle, BulkReject400Rate: *bulkReject,
		StrictCustomers: *strict, DeskAccess: *deskAccess,
		ForbidCreateCustomer: *noCustomers, ForbidAddCustomer: *noAdd, HideEmails: *hideEmails, HideCustomerEmails: *hideEmails,
		DenyCreate: *denyCreate, AnonymousFallback: *anonymous,
		CreateMetaList: *metaList, IssueTypesList: *typesList, CreateMetaPageSize: *metaPage,
		Seed: *seed, StateFile: *stateFile, Logger: log,
	}
	if err := opts.Validate(); err != nil {
		return fmt.Errorf("flags: %w", err)
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	sb := jirasandbox.New(opts)
	return sb.ListenAndServe(ctx, *addr, func(url string) {
		fmt.Fprintf(stdout, "jira sandbox listening on %s (tickets: %s/)\n", url, url)
		log.Info("jira sandbox ready", "url", url, "auth", *email != "" || *token != "" || *pat != "")
	})
}
