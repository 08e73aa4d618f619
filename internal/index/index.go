package index

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/deadletters"
	"github.com/cowjacket/formjira/internal/form"
	"github.com/cowjacket/formjira/internal/stream"
	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

// Entry is where a request's event is in FORMS (key h.…).
type Entry struct {
	Hash    string    `json:"hash"`
	Seq     uint64    `json:"seq"`
	Subject string    `json:"subject"`
	Stored  time.Time `json:"stored"`
}

// State is the latest outcome of a request's delivery or replay (key s.…).
type State struct {
	Hash       string    `json:"hash"`
	Seq        uint64    `json:"seq,omitempty"`
	Deliveries int       `json:"deliveries,omitempty"` // the consumer's delivery count, highest seen
	Replays    int       `json:"replays,omitempty"`
	Status     string    `json:"status"` // created, skipped, dead_lettered, retry, held, auth_failed, rejected
	Key        string    `json:"key,omitempty"`
	DLQSeq     uint64    `json:"dlq_seq,omitempty"`
	LastError  string    `json:"last_error,omitempty"`
	ErrorAt    time.Time `json:"error_at,omitzero"`
	Via        string    `json:"via,omitempty"` // "ticketer", "dlq replay", "replay"
	At         time.Time `json:"at"`
}

// Index reads and writes FORMS_INDEX.
type Index struct {
	KV jetstream.KeyValue
	// JS, when set, lets Add publish without waiting for each
	// acknowledgement (the tailer's bulk path).
	JS jetstream.JetStream
}

// MaxMatches bounds one term's listing: a query matching more is too
// broad to show request by request.
const MaxMatches = 500

// ErrTooBroad: a term matches more than MaxMatches requests.
var ErrTooBroad = errors.New("matches too many requests; narrow the query")

// Postings are the keys that make ev findable, with their values.
func Postings(seq uint64, subject string, stored time.Time, ev *formsv1.FormSubmission) map[string][]byte {
	hash := ev.GetHash()
	if !IsHash(hash) {
		return nil
	}
	seqv := []byte(strconv.FormatUint(seq, 10))
	e, _ := json.Marshal(Entry{Hash: hash, Seq: seq, Subject: subject, Stored: stored.UTC()})
	out := map[string][]byte{entryKey(hash): e}
	if email := form.String(ev, deadletters.EmailColumn); email != "" {
		out[emailPrefix+EmailTerm(email)+"."+hash] = seqv
	}
	for _, t := range NameTerms(form.String(ev, deadletters.NameColumn)) {
		out[namePrefix+t+"."+hash] = seqv
	}
	if id := PrimaryKey(ev); id != "" {
		out[idPrefix+IDTerm(id)+"."+hash] = seqv
	}
	return out
}

// PrimaryKey is the row's primary key as text ("17"; "a,b" for a composite
// key).
func PrimaryKey(ev *formsv1.FormSubmission) string {
	var parts []string
	for _, c := range ev.GetSource().GetPrimaryKey() {
		if s, ok := form.Canonical(c.GetValue()); ok {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, ",")
}

// Put writes kvs; with JS set it publishes them all before waiting.
func (x *Index) Put(ctx context.Context, kvs map[string][]byte) error {
	if x.JS == nil {
		for k, v := range kvs {
			if _, err := x.KV.Put(ctx, k, v); err != nil {
				return fmt.Errorf("write %s %s: %w", stream.IndexBucket, k, err)
			}
		}
		return nil
	}
	var futs []jetstream.PubAckFuture
	for k, v := range kvs {
		f, err := x.JS.PublishAsync("$KV."+stream.IndexBucket+"."+k, v)
		if err != nil {
			return fmt.Errorf("write %s %s: %w", stream.IndexBucket, k, err)
		}
		futs = append(futs, f)
	}
	for _, f := range futs {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("write %s: %w", stream.IndexBucket, err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Entry is the hash's place in FORMS; nil when it is not indexed.
func (x *Index) Entry(ctx context.Context, hash string) (*Entry, error) {
	if !IsHash(hash) {
		return nil, nil
	}
	var e Entry
	ok, err := x.getJSON(ctx, entryKey(hash), &e)
	if !ok {
		return nil, err
	}
	return &e, nil
}

// State is the hash's latest outcome; nil when none is recorded.
func (x *Index) State(ctx context.Context, hash string) (*State, error) {
	var s State
	ok, err := x.getJSON(ctx, stateKey(hash), &s)
	if !ok {
		return nil, err
	}
	return &s, nil
}

func (x *Index) getJSON(ctx context.Context, key string, v any) (bool, error) {
	e, err := x.KV.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s %s: %w", stream.IndexBucket, key, err)
	}
	if err := json.Unmarshal(e.Value(), v); err != nil {
		return false, fmt.Errorf("decode %s %s: %w", stream.IndexBucket, key, err)
	}
	return true, nil
}

// ByJiraKey is the hash a ticket was created for ("" when unknown).
func (x *Index) ByJiraKey(ctx context.Context, key string) (string, error) {
	e, err := x.KV.Get(ctx, jiraKey(key))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read %s %s: %w", stream.IndexBucket, jiraKey(key), err)
	}
	return string(e.Value()), nil
}

// ByEmail are the hashes of the requests from email.
func (x *Index) ByEmail(ctx context.Context, email string) ([]string, error) {
	return x.list(ctx, emailPrefix+EmailTerm(email)+".")
}

// ByID are the hashes of the rows with primary key id.
func (x *Index) ByID(ctx context.Context, id string) ([]string, error) {
	return x.list(ctx, idPrefix+IDTerm(id)+".")
}

// ByName are the hashes of the requests whose name has every word of
// name. A word too common to list (a first name among 100,000 requests)
// only narrows what the others found, one posting read each: "John Smith"
// is found however many Johns there are.
func (x *Index) ByName(ctx context.Context, name string) ([]string, error) {
	terms := NameTerms(name)
	// The terms' postings are listed at once: each listing is a round of
	// the server's filtered key scan, the most of a name query's time.
	lists := make([][]string, len(terms))
	errs := make([]error, len(terms))
	var wg sync.WaitGroup
	for i, t := range terms {
		wg.Go(func() { lists[i], errs[i] = x.list(ctx, namePrefix+t+".") })
	}
	wg.Wait()
	var out, broad []string
	listed := false
	for i, t := range terms {
		hs, err := lists[i], errs[i]
		if errors.Is(err, ErrTooBroad) {
			broad = append(broad, t)
			continue
		}
		if err != nil {
			return nil, err
		}
		if !listed {
			out, listed = hs, true
			continue
		}
		out = slices.DeleteFunc(out, func(h string) bool { _, found := slices.BinarySearch(hs, h); return !found })
	}
	if !listed && len(broad) > 0 {
		return nil, fmt.Errorf("%q: %w", name, ErrTooBroad)
	}
	for _, t := range broad {
		var keep []string
		for _, h := range out {
			_, err := x.KV.Get(ctx, namePrefix+t+"."+h)
			switch {
			case err == nil:
				keep = append(keep, h)
			case !errors.Is(err, jetstream.ErrKeyNotFound):
				return nil, fmt.Errorf("read %s: %w", stream.IndexBucket, err)
			}
		}
		out = keep
	}
	return out, nil
}

// ByHashPrefix are the indexed hashes starting with p (≥ 8 hex digits).
func (x *Index) ByHashPrefix(ctx context.Context, p string) ([]string, error) {
	if !IsHashPrefix(p) {
		return nil, fmt.Errorf("a hash prefix needs 8 to 64 hex digits, got %q", p)
	}
	if IsHash(p) {
		e, err := x.Entry(ctx, p)
		if e == nil || err != nil {
			return nil, err
		}
		return []string{p}, nil
	}
	keys, err := x.keys(ctx, entryPrefix+p[:8]+".>")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, k := range keys {
		h := strings.Replace(strings.TrimPrefix(k, entryPrefix), ".", "", 1)
		if strings.HasPrefix(h, p) {
			out = append(out, h)
		}
	}
	return out, nil
}

// list is the hashes of the postings under prefix (which ends in '.'),
// sorted.
func (x *Index) list(ctx context.Context, prefix string) ([]string, error) {
	keys, err := x.keys(ctx, prefix+">")
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		if h := strings.TrimPrefix(k, prefix); IsHash(h) {
			out = append(out, h)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func (x *Index) keys(ctx context.Context, filter string) ([]string, error) {
	lister, err := x.KV.ListKeysFiltered(ctx, filter)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, nil
		}
		return nil, fmt.Errorf("list %s %s: %w", stream.IndexBucket, filter, err)
	}
	defer func() { _ = lister.Stop() }()
	var out []string
	for k := range lister.Keys() {
		out = append(out, k)
		if len(out) > MaxMatches {
			return nil, fmt.Errorf("%s: %w", filter, ErrTooBroad)
		}
	}
	return out, nil
}

// Checkpoint is the last FORMS sequence indexed and its revision.
func (x *Index) Checkpoint(ctx context.Context) (uint64, uint64, error) {
	e, err := x.KV.Get(ctx, checkpointKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("read %s %s: %w", stream.IndexBucket, checkpointKey, err)
	}
	n, _ := strconv.ParseUint(string(e.Value()), 10, 64)
	return n, e.Revision(), nil
}

// SetCheckpoint moves the checkpoint to seq if it is still at rev (0:
// absent); false when another ticketer moved it first.
func (x *Index) SetCheckpoint(ctx context.Context, seq, rev uint64) (bool, error) {
	v := []byte(strconv.FormatUint(seq, 10))
	var err error
	if rev == 0 {
		_, err = x.KV.Create(ctx, checkpointKey, v)
	} else {
		_, err = x.KV.Update(ctx, checkpointKey, v, rev)
	}
	if stream.CASConflict(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("write %s %s: %w", stream.IndexBucket, checkpointKey, err)
	}
	return true, nil
}
