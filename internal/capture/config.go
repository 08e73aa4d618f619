package capture

import (
	"log/slog"
	"strings"
	"time"

	"github.com/cowjacket/formjira/internal/alert"
	"github.com/cowjacket/formjira/internal/config"
	"github.com/cowjacket/formjira/internal/pgcdc"
)

// Vars are every variable capture reads, with defaults, for --help and for
// checks that deploy files set only known variables. The ALERT_* ones are
// internal/alert's (those capture acts on).
var Vars = append([]config.Var{
	{Name: "DATABASE_URL", Required: true, Secret: true, Help: "the form database (postgres://...); the role needs REPLICATION"},
	{Name: "FORM_TABLE", Default: "public.form_submissions", Help: "table to capture (schema.table)"},
	{Name: "NATS_URL", Default: "nats://127.0.0.1:4222", Help: "JetStream server(s), comma-separated"},
	{Name: "HTTP_ADDR", Default: ":9101", Help: "listen address for /metrics, /healthz, /readyz (off disables)"},
	{Name: "SLOT_NAME", Default: "cowjacket", Help: "logical replication slot (pgoutput), created when absent"},
	{Name: "PUBLICATION_NAME", Default: "cowjacket", Help: "publication (INSERT only, FORM_TABLE), created when absent"},
	{Name: "HASH_FIELDS", Default: "", Help: "comma-separated columns the record hash covers; empty = every column but the primary key"},
	{Name: "STREAM_REPLICAS", Default: "1", Help: "replicas of streams FORMS and FORMS_DLQ (3 on a cluster)"},
	{Name: "DUPLICATE_WINDOW", Default: "24h", Help: "how long JetStream collapses re-sent rows by Nats-Msg-Id"},
	{Name: "MAX_IN_FLIGHT", Default: "1024", Help: "rows published and not yet acknowledged, at most (bounds memory)"},
	{Name: "PUBLISH_ACK_TIMEOUT", Default: "5s", Help: "wait for a JetStream acknowledgement before re-publishing"},
	{Name: "STATUS_INTERVAL", Default: "10s", Help: "longest time between status updates to PostgreSQL (at most 10s)"},
	{Name: "HEARTBEAT_INTERVAL", Default: "30s", Help: "pg_logical_emit_message heartbeat, so a quiet table does not pin WAL"},
	{Name: "STANDBY_POLL", Default: "2s", Help: "how often a standby capture tries to take over the slot"},
	{Name: "LOG_LEVEL", Default: "info", Help: "debug, info, warn or error"},
}, captureAlertVars()...)

// Config is capture's parsed configuration.
type Config struct {
	DatabaseURL       string
	Table             pgcdc.Table
	NATSURL           string
	HTTPAddr          string
	Slot              string
	Publication       string
	HashFields        []string
	Replicas          int
	DuplicateWindow   time.Duration
	MaxInFlight       int
	AckTimeout        time.Duration
	StatusInterval    time.Duration
	HeartbeatInterval time.Duration
	StandbyPoll       time.Duration
	LogLevel          slog.Level
	// Alert is ALERT_*; alerts are off unless a sink is configured.
	Alert alert.Config
}

// LoadConfig reads and checks every variable; the error is one line naming
// the first bad one, never echoing a secret.
func LoadConfig(get func(string) string) (Config, error) {
	r := config.NewReader(get, Vars)
	c := Config{
		DatabaseURL:       r.URL("DATABASE_URL", "postgres", "postgresql"),
		NATSURL:           r.String("NATS_URL"),
		HTTPAddr:          r.String("HTTP_ADDR"),
		Slot:              r.String("SLOT_NAME"),
		Publication:       r.String("PUBLICATION_NAME"),
		HashFields:        r.List("HASH_FIELDS"),
		Replicas:          r.Int("STREAM_REPLICAS", 1),
		DuplicateWindow:   r.Duration("DUPLICATE_WINDOW"),
		MaxInFlight:       r.Int("MAX_IN_FLIGHT", 1),
		AckTimeout:        r.Duration("PUBLISH_ACK_TIMEOUT"),
		StatusInterval:    r.Duration("STATUS_INTERVAL"),
		HeartbeatInterval: r.Duration("HEARTBEAT_INTERVAL"),
		StandbyPoll:       r.Duration("STANDBY_POLL"),
	}
	table := r.String("FORM_TABLE")
	level := r.String("LOG_LEVEL")
	if err := r.Err(); err != nil {
		return Config{}, err
	}
	var err error
	if c.Table, err = pgcdc.ParseTable(table); err != nil {
		return Config{}, configErr("FORM_TABLE", err.Error())
	}
	if err := c.LogLevel.UnmarshalText([]byte(level)); err != nil {
		return Config{}, configErr("LOG_LEVEL", "want debug, info, warn or error, got "+level)
	}
	// PostgreSQL's wal_sender_timeout defaults to 60 s; more than 10 s
	// between updates also lets lag metrics and pg_stat_replication go stale.
	if c.StatusInterval > 10*time.Second {
		return Config{}, configErr("STATUS_INTERVAL", "at most 10s, got "+c.StatusInterval.String())
	}
	for _, n := range []struct{ name, v string }{{"SLOT_NAME", c.Slot}, {"PUBLICATION_NAME", c.Publication}} {
		if n.v == "" || strings.ContainsAny(n.v, " '\"") {
			return Config{}, configErr(n.name, "want a plain identifier, got "+n.v)
		}
	}
	// The error is alert.VarError: one line naming the variable, no secret.
	if c.Alert, err = alert.ConfigFromEnv(get); err != nil {
		return Config{}, err
	}
	c.Alert.FlushTimeout = alertFlushTimeout
	return c, nil
}

type cfgError struct{ name, msg string }

func (e *cfgError) Error() string { return e.name + ": " + e.msg }

func configErr(name, msg string) error { return &cfgError{name, msg} }
