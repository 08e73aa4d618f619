package ticketer

import (
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/cowjacket/formjira/internal/alert"
	"github.com/cowjacket/formjira/internal/config"
	"github.com/cowjacket/formjira/internal/jira"
	"github.com/cowjacket/formjira/internal/natsconn"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/telemetry"
)

// Vars are ticketer's environment variables, for --help and the docs:
// its own, then the shared ones of the packages that read them.
var Vars = config.For(config.Ticketer, []config.Var{
	{Name: "JIRA_URL", Required: true, Help: "Jira site, e.g. https://cowjacket.atlassian.net"},
	{Name: "JIRA_EMAIL", Help: "Jira Cloud account e-mail (basic auth with JIRA_API_TOKEN)"},
	{Name: "JIRA_API_TOKEN", Secret: true, Help: "Jira Cloud API token"},
	{Name: "JIRA_PAT", Secret: true, Help: "Jira Data Center personal access token (instead of e-mail + token)"},
	{Name: "JIRA_CA_FILE", File: true, Help: "extra CA certificate(s), PEM, trusted beside the system's: a Jira behind a private CA"},
	{Name: "MAPPING_FILE", Default: "deploy/mapping.yaml", File: true, Help: "form column → Jira field mapping"},
	{Name: "HTTP_ADDR", Default: ":9102", Help: "/metrics, /healthz, /readyz (off = disabled)"},
	{Name: "CONCURRENCY", Default: "4", Help: "batches processed at once (JSM: requests in flight per batch too)"},
	{Name: "BATCH_SIZE", Default: "50", Help: "events per batch; platform mode bulk-creates up to 50 per call"},
	{Name: "BATCH_WAIT", Default: "50ms", Help: "how long to gather a batch after its first event, when more are already waiting (none waiting: no wait)"},
	{Name: "MAX_DELIVER", Default: "10", Help: "failed deliveries (failures of the event itself while Jira works: outages, throttling and restarts do not count) before it is dead-lettered as exhausted"},
	{Name: "ACK_WAIT", Default: "30s", Help: "redelivery timeout of an unacknowledged event (kept alive while retrying)"},
	{Name: "BACKOFF", Default: "30s,1m,2m,5m,10m", Help: "redelivery delays after a failed delivery (consumer BackOff)"},
	{Name: "MAX_ACK_PENDING", Default: "1000", Help: "events in flight, unacknowledged, at most"},
	{Name: "JIRA_TIMEOUT", Default: "30s", Help: "timeout of one Jira request"},
	{Name: "JIRA_RATE", Default: "0", Help: "requests per second to any one Jira endpoint, the budget of the whole site, shared by all replicas (0 = find Jira's pace: its X-RateLimit-Limit when it sends one, else unpaced until a 429, then just under it)"},
	{Name: "RECONCILE_DELAY", Default: "10m", Help: "how long Jira's search may lag behind a create: an unknown outcome that neither search nor a read by key finds counts as nothing created only after JIRA_TIMEOUT + this"},
	{Name: "RETRY_WINDOW", Default: "1m", Help: "how long to retry transient Jira failures within one delivery"},
	{Name: "CONSOLE_ADDR", Default: "127.0.0.1:9103", Help: "ticketer console: where the web console listens (serve it behind HTTPS: its cookies are Secure)"},
	{Name: "CONSOLE_USERS_FILE", File: true, Help: "ticketer console: htpasswd file of users (bcrypt hashes, htpasswd -B); they sign in with a password or HTTP Basic auth on /api/"},
	{Name: "CONSOLE_OPERATORS", Help: "ticketer console: users of CONSOLE_USERS_FILE who may replay (comma-separated; the others only see)"},
	{Name: "CONSOLE_OIDC_ISSUER", Help: "ticketer console: OpenID Connect issuer URL (sign-in with the company's identity provider)"},
	{Name: "CONSOLE_OIDC_CLIENT_ID", Help: "ticketer console: the console's OIDC client id"},
	{Name: "CONSOLE_OIDC_CLIENT_SECRET", Secret: true, Help: "ticketer console: the console's OIDC client secret"},
	{Name: "CONSOLE_URL", Help: "ticketer console: its external base URL, e.g. https://console.example.com (OIDC redirects to CONSOLE_URL/auth/callback)"},
	{Name: "CONSOLE_OIDC_OPERATORS", Help: "ticketer console: e-mails (counted only when the token says email_verified) or groups (the token's groups claim) who may replay, comma-separated"},
}, natsconn.Vars, stream.Vars, telemetry.Vars, alert.Vars)

// Config is the parsed environment.
type Config struct {
	NATS                    natsconn.Config
	JiraURL                 string
	JiraEmail, JiraAPIToken string
	JiraPAT                 string
	JiraCAFile              string
	MappingFile             string
	HTTPAddr                string
	Concurrency, BatchSize  int
	BatchWait               time.Duration
	MaxDeliver              int
	AckWait                 time.Duration
	Backoff                 []time.Duration
	MaxAckPending           int
	JiraTimeout             time.Duration
	JiraRate                float64
	ReconcileDelay          time.Duration
	RetryWindow             time.Duration
	Streams                 stream.Config
	LogLevel                slog.Level
	// Alert is ALERT_*; alerts are off unless a sink is configured.
	Alert alert.Config
}

// LoadConfig reads the configuration; the error is one line naming the
// variable.
//
// The Jira settings are read but not required here: commands that never
// call Jira (dlq list, dlq show, stats, healthcheck) work without them.
// Those that do call RequireJira.
func LoadConfig(get func(string) string) (*Config, error) {
	vars := slices.Clone(Vars)
	for i := range vars {
		if vars[i].Name == "JIRA_URL" {
			vars[i].Required = false
		}
	}
	r := config.NewReader(get, vars)
	c := &Config{
		NATS:           natsconn.Load(r),
		JiraURL:        r.URL("JIRA_URL", "http", "https"),
		JiraEmail:      r.String("JIRA_EMAIL"),
		JiraAPIToken:   r.Secret("JIRA_API_TOKEN"),
		JiraPAT:        r.Secret("JIRA_PAT"),
		JiraCAFile:     r.String("JIRA_CA_FILE"),
		MappingFile:    r.String("MAPPING_FILE"),
		HTTPAddr:       r.String("HTTP_ADDR"),
		Concurrency:    r.Int("CONCURRENCY", 1),
		BatchSize:      r.Int("BATCH_SIZE", 1),
		BatchWait:      r.Duration("BATCH_WAIT"),
		MaxDeliver:     r.Int("MAX_DELIVER", 1),
		AckWait:        r.Duration("ACK_WAIT"),
		MaxAckPending:  r.Int("MAX_ACK_PENDING", 1),
		JiraTimeout:    r.Duration("JIRA_TIMEOUT"),
		JiraRate:       r.Float("JIRA_RATE"),
		ReconcileDelay: r.Duration("RECONCILE_DELAY"),
		RetryWindow:    r.Duration("RETRY_WINDOW"),
		Streams:        stream.LoadConfig(r),
		LogLevel:       r.LogLevel("LOG_LEVEL"),
	}
	var err error
	if c.Alert, err = alert.ConfigFromEnv(get); err != nil {
		return nil, err
	}
	for _, s := range r.List("BACKOFF") {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return nil, config.Errorf("BACKOFF", "want durations like 30s,1m, got %q", s)
		}
		c.Backoff = append(c.Backoff, d)
	}
	if err := r.Err(); err != nil {
		return nil, err
	}
	if c.JiraCAFile != "" {
		if _, err := jira.RootCAs(c.JiraCAFile); err != nil {
			return nil, config.Errorf("JIRA_CA_FILE", "%v", err)
		}
	}
	switch {
	case c.BatchSize > 50:
		return nil, config.Errorf("BATCH_SIZE", "at most 50 (Jira's bulk create limit), got %d", c.BatchSize)
	case len(c.Backoff) >= c.MaxDeliver:
		return nil, config.Errorf("BACKOFF", "%d delays need MAX_DELIVER above %d, got %d", len(c.Backoff), len(c.Backoff), c.MaxDeliver)
	case c.MaxAckPending < c.BatchSize*c.Concurrency:
		return nil, config.Errorf("MAX_ACK_PENDING", "at least BATCH_SIZE×CONCURRENCY (%d), got %d", c.BatchSize*c.Concurrency, c.MaxAckPending)
	case strings.TrimSpace(c.MappingFile) == "":
		return nil, config.Errorf("MAPPING_FILE", "required")
	}
	return c, nil
}

// RequireJira checks the Jira settings, for the commands that call Jira
// (the service, check, replay, dlq replay); the error is one line naming
// the variable.
func (c *Config) RequireJira() error {
	switch {
	case c.JiraURL == "":
		return config.Errorf("JIRA_URL", "required but not set (see --help)")
	case c.JiraPAT == "" && c.JiraEmail == "":
		return config.Errorf("JIRA_EMAIL", "required with JIRA_API_TOKEN (or set JIRA_PAT)")
	case c.JiraPAT == "" && c.JiraAPIToken == "":
		return config.Errorf("JIRA_API_TOKEN", "required with JIRA_EMAIL (or set JIRA_PAT)")
	}
	return nil
}

// redelivery is the delay before delivery n+1 after delivery n failed.
func (c *Config) redelivery(n int) time.Duration {
	if len(c.Backoff) == 0 {
		return c.AckWait
	}
	return c.Backoff[min(max(n-1, 0), len(c.Backoff)-1)]
}
