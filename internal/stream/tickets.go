package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TicketsStream is the stream behind KV bucket FORMS_TICKETS (JetStream
// names a bucket's stream KV_<bucket>): read it to see the records in the
// order they were written.
const TicketsStream = "KV_" + TicketsBucket

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
	// edit after the create) are not added yet; see LabelJob.
	LabelsPending bool `json:"labels_pending,omitempty"`
	// Failures counts deliveries that ended failing for this event while
	// Jira otherwise worked (not outages, throttling or shutdowns): at
	// MAX_DELIVER the event is dead-lettered as exhausted.
	Failures int `json:"failures,omitempty"`
	// KeyFrom is the lowest issue number the last create may have got: one
	// above the highest known before it was sent (0: unknown). Reading keys
	// upwards from here finds its issue without search's lag.
	KeyFrom int `json:"key_from,omitempty"`
}

// CASConflict reports a KV write refused because the key moved: a Create
// of a key that exists, an Update at a revision that is not the last.
func CASConflict(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, jetstream.ErrKeyExists) || errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

// ErrConflict: someone else wrote the record since it was read.
var ErrConflict = errors.New("ticket record changed concurrently")

// Tickets reads and writes FORMS_TICKETS. Every write after the first is
// checked against the revision read, so two workers never both believe
// they own a claim.
type Tickets struct{ KV jetstream.KeyValue }

// Get is the record and its revision; (nil, 0, nil) when there is none.
func (t Tickets) Get(ctx context.Context, hash string) (*Record, uint64, error) {
	e, err := t.KV.Get(ctx, hash)
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

// Put writes rec: Create when rev is 0 (fails if the hash is already
// recorded), otherwise an Update at rev. ErrConflict when the record moved.
func (t Tickets) Put(ctx context.Context, hash string, rec *Record, rev uint64) (uint64, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return 0, err
	}
	var n uint64
	if rev == 0 {
		n, err = t.KV.Create(ctx, hash, b)
	} else {
		n, err = t.KV.Update(ctx, hash, b, rev)
	}
	if err != nil {
		if CASConflict(err) {
			return 0, ErrConflict
		}
		return 0, fmt.Errorf("write ticket record %s: %w", hash, err)
	}
	return n, nil
}

// Delete removes a claim that provably created nothing, if still at rev.
func (t Tickets) Delete(ctx context.Context, hash string, rev uint64) error {
	if err := t.KV.Delete(ctx, hash, jetstream.LastRevision(rev)); err != nil {
		return fmt.Errorf("delete ticket record %s: %w", hash, err)
	}
	return nil
}

// LabelJob is a pending label edit (JSM: a request type without a labels
// field gets its labels by an edit after the create), kept as the marker
// key "labels.<hash>" in FORMS_TICKETS until done, so `nats kv ls
// FORMS_TICKETS` shows what is pending and a restart finds it again.
type LabelJob struct {
	Hash   string    `json:"hash"`
	Key    string    `json:"key"`
	Labels []string  `json:"labels"`
	Since  time.Time `json:"since"`
}

// labelMarkerPrefix starts the marker keys (hashes are hex: no clash).
const labelMarkerPrefix = "labels."

// PutLabelJob stores the job's marker.
func (t Tickets) PutLabelJob(ctx context.Context, job LabelJob) error {
	b, err := json.Marshal(job)
	if err != nil {
		return err
	}
	_, err = t.KV.Put(ctx, labelMarkerPrefix+job.Hash, b)
	return err
}

// DeleteLabelJob removes the marker of hash.
func (t Tickets) DeleteLabelJob(ctx context.Context, hash string) error {
	return t.KV.Delete(ctx, labelMarkerPrefix+hash)
}

// LabelJobs lists the pending jobs (a server-side filtered key listing: its
// cost is the number of pending edits, not the size of the bucket). An
// unreadable marker is yielded with its error; a marker deleted meanwhile is
// skipped.
func (t Tickets) LabelJobs(ctx context.Context) (iter.Seq2[LabelJob, error], error) {
	lister, err := t.KV.ListKeysFiltered(ctx, labelMarkerPrefix+">")
	if err != nil {
		return nil, err
	}
	return func(yield func(LabelJob, error) bool) {
		defer lister.Stop()
		for k := range lister.Keys() {
			e, err := t.KV.Get(ctx, k)
			if err != nil {
				continue // deleted meanwhile: done
			}
			var job LabelJob
			if json.Unmarshal(e.Value(), &job) != nil || job.Key == "" || len(job.Labels) == 0 {
				if !yield(LabelJob{}, fmt.Errorf("unreadable pending label edit %s", k)) {
					return
				}
				continue
			}
			job.Hash = strings.TrimPrefix(k, labelMarkerPrefix)
			if !yield(job, nil) {
				return
			}
		}
	}, nil
}
