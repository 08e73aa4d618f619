package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// CaptureStatusBucket is the KV bucket where every running capture
// publishes its status (key status.<instance>), so that operators and the
// web console see active and standby captures without database access.
// capture creates and updates it; entries of a capture that died vanish
// after CaptureStatusTTL.
const CaptureStatusBucket = "FORMS_CAPTURE"

// CaptureStatusTTL is how long an entry outlives its last update.
const CaptureStatusTTL = time.Minute

// Roles of a capture in its status.
const (
	RoleActive  = "active"  // streaming: it holds the replication slot
	RoleStandby = "standby" // waiting to take the slot over (or reconnecting)
)

// CaptureStatusConfig is KV bucket FORMS_CAPTURE: one small entry per
// capture process, the latest only, gone a minute after its last update.
func CaptureStatusConfig(c Config) jetstream.KeyValueConfig {
	kv := c.bucket(CaptureStatusBucket, "Status of each running capture (key status.<instance>), written every few seconds")
	kv.TTL = CaptureStatusTTL
	return kv
}

// EnsureCaptureStatus creates or updates KV bucket FORMS_CAPTURE (capture
// owns it).
func EnsureCaptureStatus(ctx context.Context, js jetstream.JetStream, c Config) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, CaptureStatusConfig(c))
	if err != nil {
		return nil, fmt.Errorf("create or update KV bucket %s: %w", CaptureStatusBucket, err)
	}
	return kv, nil
}

// CaptureStatus is one capture's entry in FORMS_CAPTURE (JSON).
type CaptureStatus struct {
	Instance string `json:"instance"` // hostname-pid: stable for the process
	Role     string `json:"role"`     // RoleActive or RoleStandby
	State    string `json:"state"`    // what it is doing, in words
	Table    string `json:"table"`    // schema.table
	Slot     string `json:"slot"`
	// The slot as PostgreSQL last showed it to this capture.
	ConfirmedLSN     string    `json:"confirmed_lsn,omitempty"`
	ConfirmedAt      time.Time `json:"confirmed_at,omitzero"` // when the confirmed LSN last moved, as this capture saw it
	SlotLagBytes     int64     `json:"slot_lag_bytes"`        // pg_current_wal_lsn() - confirmed_flush_lsn
	RetainedWALBytes int64     `json:"retained_wal_bytes"`    // pg_current_wal_lsn() - restart_lsn: WAL the slot keeps
	WALEnd           string    `json:"wal_end,omitempty"`     // pg_current_wal_lsn()
	// Rows JetStream acknowledged from this capture since it started.
	RowsPublished  int64     `json:"rows_published"`
	RowsDuplicate  int64     `json:"rows_duplicate"`
	RowsDeadLetter int64     `json:"rows_dead_lettered"`
	LastError      string    `json:"last_error,omitempty"`
	LastErrorAt    time.Time `json:"last_error_at,omitzero"`
	StartedAt      time.Time `json:"started_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// CaptureStatusKey is the key of an instance's entry: status.<instance>,
// with characters a key cannot hold replaced by '_'.
func CaptureStatusKey(instance string) string {
	return "status." + strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '=' {
			return r
		}
		return '_'
	}, instance)
}

// ReadCaptureStatus returns every capture's current entry, the active ones
// first, then by instance. No bucket (no capture has run within a minute
// of its creation, or ever) is no entries.
func ReadCaptureStatus(ctx context.Context, js jetstream.JetStream) ([]CaptureStatus, error) {
	kv, err := js.KeyValue(ctx, CaptureStatusBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("KV bucket %s: %w", CaptureStatusBucket, err)
	}
	lister, err := kv.ListKeysFiltered(ctx, "status.>")
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", CaptureStatusBucket, err)
	}
	defer func() { _ = lister.Stop() }()
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	slices.Sort(keys) // a busy bucket may list a key twice
	keys = slices.Compact(keys)
	var out []CaptureStatus
	for _, k := range keys {
		e, err := kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // expired or deleted since the listing
		}
		if err != nil {
			return nil, fmt.Errorf("get %s %s: %w", CaptureStatusBucket, k, err)
		}
		var s CaptureStatus
		if err := json.Unmarshal(e.Value(), &s); err != nil {
			return nil, fmt.Errorf("%s %s: %w", CaptureStatusBucket, k, err)
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b CaptureStatus) int {
		if (a.Role == RoleActive) != (b.Role == RoleActive) {
			if a.Role == RoleActive {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Instance, b.Instance)
	})
	return out, nil
}
