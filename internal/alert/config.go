package alert

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Var documents one environment variable for --help output.
type Var struct {
	Name    string
	Default string
	Help    string
	// Secret values must never be printed or logged.
	Secret bool
}

// Vars lists every variable ConfigFromEnv reads, with its default.
var Vars = []Var{
	{Name: "ALERT_SMTP_ADDR", Default: "", Help: "SMTP server host:port for alert e-mail; empty disables e-mail"},
	{Name: "ALERT_SMTP_USERNAME", Default: "", Help: "SMTP AUTH PLAIN user name; empty sends without AUTH"},
	{Name: "ALERT_SMTP_PASSWORD", Default: "", Help: "SMTP AUTH PLAIN password (secret)", Secret: true},
	{Name: "ALERT_SMTP_STARTTLS", Default: "true", Help: "require STARTTLS; refuse to send when the server does not offer it"},
	{Name: "ALERT_SMTP_INSECURE_SKIP_VERIFY", Default: "false", Help: "accept any TLS certificate (self-signed test servers only)"},
	{Name: "ALERT_EMAIL_FROM", Default: "", Help: "From address of alert e-mail; required with ALERT_SMTP_ADDR"},
	{Name: "ALERT_EMAIL_TO", Default: "", Help: "comma-separated recipients; required with ALERT_SMTP_ADDR"},
	{Name: "ALERT_WEBHOOK_URL", Default: "", Help: `Slack-compatible webhook (JSON POST {"text": ...}); empty disables (secret)`, Secret: true},
	{Name: "ALERT_DIGEST_INTERVAL", Default: "10m", Help: "dead letters are batched into one digest at most this often"},
	{Name: "ALERT_MIN_INTERVAL", Default: "15m", Help: "the same alert kind is not re-sent more often than this; repeats are counted"},
	{Name: "ALERT_JIRA_DOWN_AFTER", Default: "5m", Help: "alert when Jira is unreachable for longer than this"},
	{Name: "ALERT_CAPTURE_STALL_AFTER", Default: "5m", Help: "alert when capture confirms nothing (or slot lag is high) for longer than this"},
	{Name: "ALERT_SLOT_LAG_BYTES", Default: "1GiB", Help: "replication slot lag counted as stalled (bytes; KiB/MiB/GiB/KB/MB/GB suffixes allowed)"},
	{Name: "ALERT_BACKLOG_GROWING_AFTER", Default: "10m", Help: "alert when the consumer backlog grows for longer than this"},
}

// Config configures alerting. ConfigFromEnv fills the environment-backed
// fields; the tuning fields below them keep their defaults when zero.
type Config struct {
	SMTPAddr               string
	SMTPUsername           string
	SMTPPassword           string
	SMTPStartTLS           bool
	SMTPInsecureSkipVerify bool
	EmailFrom              string
	EmailTo                []string
	WebhookURL             string

	DigestInterval      time.Duration
	MinInterval         time.Duration
	JiraDownAfter       time.Duration
	CaptureStallAfter   time.Duration
	SlotLagBytes        int64
	BacklogGrowingAfter time.Duration

	// Not read from the environment; zero means the default in brackets.
	SubjectPrefix string        // ["[cowjacket]"]
	QueueSize     int           // Notify buffer [1024]
	SendAttempts  int           // attempts per message and sink [5]
	RetryBase     time.Duration // first backoff, doubled per attempt [2s]
	RetryMax      time.Duration // backoff cap [1m]
	SendTimeout   time.Duration // one attempt [30s]
	FlushTimeout  time.Duration // Run's final flush on shutdown [3s]
}

// Enabled reports whether any sink is configured; without one the Alerter
// built from this Config does nothing.
func (c Config) Enabled() bool { return c.SMTPAddr != "" || c.WebhookURL != "" }

// LogValue keeps secrets out of logs: the password is never shown and the
// webhook URL (whose path is a bearer token on Slack) only by host.
func (c Config) LogValue() slog.Value {
	email := "off"
	if c.SMTPAddr != "" {
		email = c.SMTPAddr
	}
	webhook := "off"
	if c.WebhookURL != "" {
		webhook = redactURL(c.WebhookURL)
	}
	return slog.GroupValue(
		slog.String("smtp_addr", email),
		slog.String("smtp_username", c.SMTPUsername),
		slog.Bool("smtp_password_set", c.SMTPPassword != ""),
		slog.Bool("smtp_starttls", c.SMTPStartTLS),
		slog.String("email_to", strings.Join(c.EmailTo, ",")),
		slog.String("webhook", webhook),
		slog.Duration("digest_interval", c.DigestInterval),
		slog.Duration("min_interval", c.MinInterval),
	)
}

// String is LogValue's text, so fmt-printing a Config cannot leak secrets.
func (c Config) String() string { return c.LogValue().String() }

// GoString covers %#v, which would otherwise print the password.
func (c Config) GoString() string { return c.String() }

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(redacted)"
	}
	return u.Scheme + "://" + u.Host + "/…"
}

// VarError names the variable that made the configuration invalid.
type VarError struct {
	Name string
	Err  error
}

func (e *VarError) Error() string { return e.Name + ": " + e.Err.Error() }
func (e *VarError) Unwrap() error { return e.Err }

// ConfigFromEnv reads Vars through getenv, applying defaults. The error
// names the first bad variable and never echoes a secret value.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	defaults := make(map[string]string, len(Vars))
	for _, v := range Vars {
		defaults[v.Name] = v.Default
	}
	get := func(name string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return defaults[name]
	}
	bad := func(name string, format string, args ...any) error {
		return &VarError{Name: name, Err: fmt.Errorf(format, args...)}
	}

	var c Config
	var err error
	boolVar := func(name string) bool {
		if err != nil {
			return false
		}
		v, perr := strconv.ParseBool(get(name))
		if perr != nil {
			err = bad(name, "want true or false, got %q", get(name))
		}
		return v
	}
	durVar := func(name string) time.Duration {
		if err != nil {
			return 0
		}
		d, perr := time.ParseDuration(get(name))
		switch {
		case perr != nil:
			err = bad(name, "want a duration like 10m or 30s, got %q", get(name))
		case d <= 0:
			err = bad(name, "must be positive, got %q", get(name))
		}
		return d
	}

	c.SMTPAddr = get("ALERT_SMTP_ADDR")
	c.SMTPUsername = get("ALERT_SMTP_USERNAME")
	c.SMTPPassword = getenv("ALERT_SMTP_PASSWORD") // spaces may be part of a password
	c.SMTPStartTLS = boolVar("ALERT_SMTP_STARTTLS")
	c.SMTPInsecureSkipVerify = boolVar("ALERT_SMTP_INSECURE_SKIP_VERIFY")
	c.EmailFrom = get("ALERT_EMAIL_FROM")
	for _, to := range strings.Split(get("ALERT_EMAIL_TO"), ",") {
		if to = strings.TrimSpace(to); to != "" {
			c.EmailTo = append(c.EmailTo, to)
		}
	}
	c.WebhookURL = get("ALERT_WEBHOOK_URL")
	c.DigestInterval = durVar("ALERT_DIGEST_INTERVAL")
	c.MinInterval = durVar("ALERT_MIN_INTERVAL")
	c.JiraDownAfter = durVar("ALERT_JIRA_DOWN_AFTER")
	c.CaptureStallAfter = durVar("ALERT_CAPTURE_STALL_AFTER")
	c.BacklogGrowingAfter = durVar("ALERT_BACKLOG_GROWING_AFTER")
	if err != nil {
		return Config{}, err
	}
	if c.SlotLagBytes, err = parseBytes(get("ALERT_SLOT_LAG_BYTES")); err != nil {
		return Config{}, &VarError{Name: "ALERT_SLOT_LAG_BYTES", Err: err}
	}
	if err := c.validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

func (c Config) validate() error {
	bad := func(name string, format string, args ...any) error {
		return &VarError{Name: name, Err: fmt.Errorf(format, args...)}
	}
	if c.SMTPAddr != "" {
		host, port, err := net.SplitHostPort(c.SMTPAddr)
		if err != nil || host == "" {
			return bad("ALERT_SMTP_ADDR", "want host:port, got %q", c.SMTPAddr)
		}
		if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
			return bad("ALERT_SMTP_ADDR", "bad port in %q", c.SMTPAddr)
		}
		if c.EmailFrom == "" {
			return bad("ALERT_EMAIL_FROM", "required when ALERT_SMTP_ADDR is set")
		}
		if len(c.EmailTo) == 0 {
			return bad("ALERT_EMAIL_TO", "required when ALERT_SMTP_ADDR is set")
		}
		if c.SMTPPassword != "" && c.SMTPUsername == "" {
			return bad("ALERT_SMTP_USERNAME", "required when ALERT_SMTP_PASSWORD is set")
		}
		if c.SMTPUsername != "" && c.SMTPPassword == "" {
			return bad("ALERT_SMTP_PASSWORD", "required when ALERT_SMTP_USERNAME is set")
		}
	}
	if c.EmailFrom != "" {
		if _, err := mail.ParseAddress(c.EmailFrom); err != nil {
			return bad("ALERT_EMAIL_FROM", "bad address %q: %v", c.EmailFrom, err)
		}
	}
	for _, to := range c.EmailTo {
		if _, err := mail.ParseAddress(to); err != nil {
			return bad("ALERT_EMAIL_TO", "bad address %q: %v", to, err)
		}
	}
	if c.WebhookURL != "" {
		// The URL is a secret (Slack puts the token in the path): say what
		// is wrong without repeating it.
		u, err := url.Parse(c.WebhookURL)
		switch {
		case err != nil:
			return bad("ALERT_WEBHOOK_URL", "not a valid URL")
		case u.Scheme != "http" && u.Scheme != "https":
			return bad("ALERT_WEBHOOK_URL", "scheme must be http or https")
		case u.Host == "":
			return bad("ALERT_WEBHOOK_URL", "missing host")
		}
	}
	if c.SlotLagBytes < 0 {
		return bad("ALERT_SLOT_LAG_BYTES", "must not be negative")
	}
	return nil
}

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	// Longest suffixes first so "GiB" is not read as "B".
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"B", 1},
}

func parseBytes(s string) (int64, error) {
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("want a byte count like 1073741824 or 1GiB, got %q", s)
	}
	if n > (1<<63-1)/mult {
		return 0, errors.New("too large")
	}
	return n * mult, nil
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.DigestInterval, 10*time.Minute)
	def(&c.MinInterval, 15*time.Minute)
	def(&c.JiraDownAfter, 5*time.Minute)
	def(&c.CaptureStallAfter, 5*time.Minute)
	def(&c.BacklogGrowingAfter, 10*time.Minute)
	def(&c.RetryBase, 2*time.Second)
	def(&c.RetryMax, time.Minute)
	def(&c.SendTimeout, 30*time.Second)
	def(&c.FlushTimeout, 3*time.Second)
	if c.SlotLagBytes <= 0 {
		c.SlotLagBytes = 1 << 30
	}
	if c.SubjectPrefix == "" {
		c.SubjectPrefix = "[cowjacket]"
	}
	if c.QueueSize <= 0 {
		c.QueueSize = 1024
	}
	if c.SendAttempts <= 0 {
		c.SendAttempts = 5
	}
	return c
}

// Sinks builds the sinks the configuration enables (none when !Enabled).
func (c Config) Sinks() []Sink {
	c = c.withDefaults()
	var sinks []Sink
	if c.SMTPAddr != "" {
		sinks = append(sinks, NewSMTPSink(c))
	}
	if c.WebhookURL != "" {
		sinks = append(sinks, NewWebhookSink(c.WebhookURL, nil))
	}
	return sinks
}
