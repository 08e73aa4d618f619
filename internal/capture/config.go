package capture

import (
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/cowjacket/formjira/internal/alert"
	"github.com/cowjacket/formjira/internal/config"
	"github.com/cowjacket/formjira/internal/form"
	"github.com/cowjacket/formjira/internal/natsconn"
	"github.com/cowjacket/formjira/internal/pgcdc"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/telemetry"
)

// Vars are every variable capture reads, with defaults, for --help and for
// checks that deploy files set only known variables: capture's own, then
// the shared ones of the packages that read them.
var Vars = config.For(config.Capture, []config.Var{
	{Name: "DATABASE_URL", Required: true, Secret: true, Help: "the form database (postgres://...); the role needs REPLICATION"},
	{Name: "FORM_TABLE", Default: "public.form_submissions", Help: "table to capture (schema.table)"},
	{Name: "HTTP_ADDR", Default: ":9101", Help: "listen address for /metrics, /healthz, /readyz (off disables)"},
	{Name: "SLOT_NAME", Default: "cowjacket", Help: "logical replication slot (pgoutput), created when absent"},
	{Name: "PUBLICATION_NAME", Default: "cowjacket", Help: "publication (INSERT only, FORM_TABLE), created when absent"},
	{Name: "HASH_FIELDS", Default: "", Help: "comma-separated columns the record hash covers (old|new for a renamed column: hashed under the old name); empty = every column but the primary key"},
	{Name: "MAX_IN_FLIGHT", Default: "1024", Help: "rows published and not yet acknowledged, at most (bounds memory)"},
	{Name: "PUBLISH_ACK_TIMEOUT", Default: "5s", Help: "wait for a JetStream acknowledgement before re-publishing"},
	{Name: "STATUS_INTERVAL", Default: "10s", Help: "longest time between status updates to PostgreSQL (at most 10s)"},
	{Name: "HEARTBEAT_INTERVAL", Default: "30s", Help: "pg_logical_emit_message heartbeat, so a quiet table does not pin WAL"},
	{Name: "STANDBY_POLL", Default: "2s", Help: "how often a standby capture tries to take over the slot"},
}, natsconn.Vars, stream.Vars, telemetry.Vars, alert.Vars)

// Config is capture's parsed configuration.
type Config struct {
	DatabaseURL       string
	Table             pgcdc.Table
	NATS              natsconn.Config
	HTTPAddr          string
	Slot              string
	Publication       string
	HashFields        []string
	Streams           stream.Config
	MaxInFlight       int
	AckTimeout        time.Duration
	StatusInterval    time.Duration
	HeartbeatInterval time.Duration
	StandbyPoll       time.Duration
	LogLevel          slog.Level
	// Alert is ALERT_*; alerts are off unless a sink is configured.
	Alert alert.Config
}

var slotName = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

// checkHashFields: every name (old|new for a renamed column) is a name, and
// no column is named twice, which would make which one counts unclear.
func checkHashFields(fields []string) error {
	seen := map[string]bool{}
	for _, f := range fields {
		for _, n := range form.FieldNames(f) {
			switch {
			case n == "" || strings.TrimSpace(n) != n:
				return fmt.Errorf("%q: an empty name, or one with spaces around it (want name or old|new)", f)
			case seen[n]:
				return fmt.Errorf("%q: column %q named twice", f, n)
			}
			seen[n] = true
		}
	}
	return nil
}

// LoadConfig reads and checks every variable; the error is one line naming
// the first bad one, never echoing a secret.
func LoadConfig(get func(string) string) (Config, error) {
	r := config.NewReader(get, Vars)
	c := Config{
		DatabaseURL:       r.URL("DATABASE_URL", "postgres", "postgresql"),
		NATS:              natsconn.Load(r),
		HTTPAddr:          r.String("HTTP_ADDR"),
		Slot:              r.String("SLOT_NAME"),
		Publication:       r.String("PUBLICATION_NAME"),
		HashFields:        r.List("HASH_FIELDS"),
		Streams:           stream.LoadConfig(r),
		MaxInFlight:       r.Int("MAX_IN_FLIGHT", 1),
		AckTimeout:        r.Duration("PUBLISH_ACK_TIMEOUT"),
		StatusInterval:    r.Duration("STATUS_INTERVAL"),
		HeartbeatInterval: r.Duration("HEARTBEAT_INTERVAL"),
		StandbyPoll:       r.Duration("STANDBY_POLL"),
	}
	c.LogLevel = r.LogLevel("LOG_LEVEL")
	table := r.String("FORM_TABLE")
	if err := r.Err(); err != nil {
		return Config{}, err
	}
	var err error
	if c.Table, err = pgcdc.ParseTable(table); err != nil {
		return Config{}, config.Errorf("FORM_TABLE", "%v", err)
	}
	// PostgreSQL's wal_sender_timeout defaults to 60 s; more than 10 s
	// between updates also lets lag metrics and pg_stat_replication go stale.
	// The window is allocated up front; past this, memory only grows.
	if c.MaxInFlight > 65536 {
		return Config{}, config.Errorf("MAX_IN_FLIGHT", "at most 65536, got %d", c.MaxInFlight)
	}
	if c.HeartbeatInterval < 100*time.Millisecond {
		return Config{}, config.Errorf("HEARTBEAT_INTERVAL", "at least 100ms (one write to PostgreSQL each), got %s", c.HeartbeatInterval)
	}
	if c.StatusInterval > 10*time.Second {
		return Config{}, config.Errorf("STATUS_INTERVAL", "at most 10s, got %s", c.StatusInterval)
	}
	if err := checkHashFields(c.HashFields); err != nil {
		return Config{}, config.Errorf("HASH_FIELDS", "%v", err)
	}
	// PostgreSQL's own rule for slot names.
	if !slotName.MatchString(c.Slot) {
		return Config{}, config.Errorf("SLOT_NAME", "want lower-case letters, digits and underscores (at most 63), got %q", c.Slot)
	}
	if c.Publication == "" || len(c.Publication) > 63 || strings.ContainsAny(c.Publication, " '\"") {
		return Config{}, config.Errorf("PUBLICATION_NAME", "want a plain identifier, got %q", c.Publication)
	}
	if c.Alert, err = alert.ConfigFromEnv(get); err != nil {
		return Config{}, err
	}
	c.Alert.FlushTimeout = alertFlushTimeout
	return c, nil
}
