package ticketer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Record states in FORMS_TICKETS.
const (
	// StateClaimed: a worker is creating (or tried to create) the ticket;
	// the outcome of its last attempt may be unknown.
	StateClaimed = "claimed"
	// StateCreated: the ticket exists; Key names it.
	StateCreated = "created"
)

// Record is the idempotency record of one hash (KV FORMS_TICKETS, key =
// hash), as JSON so `nats kv get` shows it plainly.
type Record struct {
	State     string    `json:"state"`
	Key       string    `json:"key,omitempty"`
	ClaimedAt time.Time `json:"claimed_at"`
	// RecheckAfter is when an empty search by the hash label proves that the
	// last attempt created nothing: the attempt's request has certainly
	// finished by then and Jira's index has caught up.
	RecheckAfter time.Time `json:"recheck_after"`
	Attempt      int       `json:"attempt"`
	StreamSeq    uint64    `json:"stream_seq"`
	FirstFailure time.Time `json:"first_failure,omitzero"`
	CreatedAt    time.Time `json:"created_at,omitzero"`
	// CommitTime is the form row's commit time (the event's
	// source.commit_time), so `ticketer stats` can report commit → ticket
	// latency from the records alone.
	CommitTime time.Time `json:"commit_time,omitzero"`
	// LabelsPending: the ticket exists but its labels (JSM: added by an
	// edit after the create) are not added yet; see labels.go.
	LabelsPending bool `json:"labels_pending,omitempty"`
}

// Records reads and writes FORMS_TICKETS. Every write after the first is
// checked against the revision read, so two workers never both believe
// they own a claim.
type Records struct{ KV jetstream.KeyValue }

// Get is the record and its revision; (nil, 0, nil) when there is none.
func (r Records) Get(ctx context.Context, hash string) (*Record, uint64, error) {
	e, err := r.KV.Get(ctx, hash)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read ticket record %s: %w", hash, err)
	}
	var rec Record
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return nil, 0, fmt.Errorf("decode ticket record %s: %w", hash, err)
	}
	return &rec, e.Revision(), nil
}

// errConflict: someone else wrote the record since we read it.
var errConflict = errors.New("ticket record changed concurrently")

// Put writes rec: Create when rev is 0 (fails if the hash is already
// recorded), otherwise an Update at rev.
func (r Records) Put(ctx context.Context, hash string, rec *Record, rev uint64) (uint64, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return 0, err
	}
	var n uint64
	if rev == 0 {
		n, err = r.KV.Create(ctx, hash, b)
	} else {
		n, err = r.KV.Update(ctx, hash, b, rev)
	}
	if err != nil {
		var apiErr *jetstream.APIError
		if errors.Is(err, jetstream.ErrKeyExists) || errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
			return 0, errConflict
		}
		return 0, fmt.Errorf("write ticket record %s: %w", hash, err)
	}
	return n, nil
}

// Delete removes a claim that provably created nothing, if still at rev.
func (r Records) Delete(ctx context.Context, hash string, rev uint64) error {
	err := r.KV.Delete(ctx, hash, jetstream.LastRevision(rev))
	if err != nil {
		return fmt.Errorf("delete ticket record %s: %w", hash, err)
	}
	return nil
}
