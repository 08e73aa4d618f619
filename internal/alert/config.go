package alert

import (
	"log/slog"
	"net"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cowjacket/formjira/internal/config"
)

// Vars lists every variable ConfigFromEnv reads, with its default and the
// binaries that act on it.
var Vars = []config.Var{
	{Name: "ALERT_SMTP_ADDR", For: config.Both, Help: "SMTP server host:port for alert e-mail; empty disables e-mail"},
	{Name: "ALERT_SMTP_USERNAME", For: config.Both, Help: "SMTP AUTH PLAIN user name; empty sends without AUTH"},
	{Name: "ALERT_SMTP_PASSWORD", For: config.Both, Secret: true, Help: "SMTP AUTH PLAIN password"},
	{Name: "ALERT_SMTP_STARTTLS", For: config.Both, Default: "true", Help: "require STARTTLS; refuse to send when the server does not offer it"},
	{Name: "ALERT_SMTP_INSECURE_SKIP_VERIFY", For: config.Both, Default: "false", Help: "accept any TLS certificate (self-signed test servers only)"},
	{Name: "ALERT_EMAIL_FROM", For: config.Both, Help: "From address of alert e-mail; required with ALERT_SMTP_ADDR"},
	{Name: "ALERT_EMAIL_TO", For: config.Both, Help: "comma-separated recipients; required with ALERT_SMTP_ADDR"},
	{Name: "ALERT_WEBHOOK_URL", For: config.Both, Secret: true, Help: `Slack-compatible webhook (JSON POST {"text": ...}); empty disables`},
	{Name: "ALERT_DIGEST_INTERVAL", For: config.Both, Default: "10m", Help: "dead letters are batched into one digest at most this often"},
	{Name: "ALERT_MIN_INTERVAL", For: config.Both, Default: "15m", Help: "the same alert kind is not re-sent more often than this; repeats are counted"},
	{Name: "ALERT_JIRA_DOWN_AFTER", For: config.Ticketer, Default: "5m", Help: "alert when Jira is unreachable for longer than this"},
	{Name: "ALERT_BACKLOG_GROWING_AFTER", For: config.Ticketer, Default: "10m", Help: "alert when the consumer backlog grows for longer than this"},
	{Name: "ALERT_CAPTURE_STALL_AFTER", For: config.Capture, Default: "5m", Help: "alert when the confirmed LSN has not moved for this long while rows are in flight or WAL is pending"},
	{Name: "ALERT_SLOT_LAG_BYTES", For: config.Capture, Default: "1GiB", Help: "alert while the slot lags the server's WAL by more than this (bytes; KiB/MiB/GiB/KB/MB/GB allowed)"},
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

// ConfigFromEnv reads Vars through getenv, applying defaults. The error is a
// *config.Error naming the first bad variable, never echoing a secret.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	r := config.NewReader(getenv, Vars)
	c := Config{
		SMTPAddr:               r.String("ALERT_SMTP_ADDR"),
		SMTPUsername:           r.String("ALERT_SMTP_USERNAME"),
		SMTPPassword:           r.Secret("ALERT_SMTP_PASSWORD"),
		SMTPStartTLS:           r.Bool("ALERT_SMTP_STARTTLS"),
		SMTPInsecureSkipVerify: r.Bool("ALERT_SMTP_INSECURE_SKIP_VERIFY"),
		EmailFrom:              r.String("ALERT_EMAIL_FROM"),
		EmailTo:                r.List("ALERT_EMAIL_TO"),
		WebhookURL:             r.Secret("ALERT_WEBHOOK_URL"),
		DigestInterval:         r.Duration("ALERT_DIGEST_INTERVAL"),
		MinInterval:            r.Duration("ALERT_MIN_INTERVAL"),
		JiraDownAfter:          r.Duration("ALERT_JIRA_DOWN_AFTER"),
		BacklogGrowingAfter:    r.Duration("ALERT_BACKLOG_GROWING_AFTER"),
		CaptureStallAfter:      r.Duration("ALERT_CAPTURE_STALL_AFTER"),
		SlotLagBytes:           r.Bytes("ALERT_SLOT_LAG_BYTES"),
	}
	if err := r.Err(); err != nil {
		return Config{}, err
	}
	if err := c.validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

func (c Config) validate() error {
	bad := config.Errorf
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

// defaults is the configuration of an empty environment: the defaults of
// Vars, the one place they are written.
var defaults = func() Config {
	c, err := ConfigFromEnv(func(string) string { return "" })
	if err != nil {
		panic("alert: the defaults of Vars are invalid: " + err.Error())
	}
	return c
}()

// withDefaults fills the zero fields: those of the environment from Vars,
// the tuning ones from the values in brackets on Config.
func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.DigestInterval, defaults.DigestInterval)
	def(&c.MinInterval, defaults.MinInterval)
	def(&c.JiraDownAfter, defaults.JiraDownAfter)
	def(&c.CaptureStallAfter, defaults.CaptureStallAfter)
	def(&c.BacklogGrowingAfter, defaults.BacklogGrowingAfter)
	def(&c.RetryBase, 2*time.Second)
	def(&c.RetryMax, time.Minute)
	def(&c.SendTimeout, 30*time.Second)
	def(&c.FlushTimeout, 3*time.Second)
	if c.SlotLagBytes <= 0 {
		c.SlotLagBytes = defaults.SlotLagBytes
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

// WithDefaults is c with every zero setting at its default.
func (c Config) WithDefaults() Config { return c.withDefaults() }

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
