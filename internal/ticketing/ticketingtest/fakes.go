// Package ticketingtest holds in-memory stand-ins for the engine's
// dependencies, so its claim, create, reconcile and dead-letter paths are
// tested without nats-server or Jira: a record store with the same
// compare-and-set rules as the KV bucket, a publisher, and a Jira made of
// funcs.
package ticketingtest

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/jira"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/ticket"
)

// Records is an in-memory FORMS_TICKETS: records with revisions (Put at rev
// 0 creates, otherwise updates at rev, else stream.ErrConflict) and label
// jobs.
type Records struct {
	mu   sync.Mutex
	rev  uint64
	recs map[string]entry
	jobs map[string]stream.LabelJob
	// Fail, if set, is asked before each operation ("get", "put", "delete")
	// and its error returned instead.
	Fail func(op, hash string) error
}

type entry struct {
	rec stream.Record
	rev uint64
}

// NewRecords is an empty store.
func NewRecords() *Records {
	return &Records{recs: map[string]entry{}, jobs: map[string]stream.LabelJob{}}
}

func (r *Records) fail(op, hash string) error {
	if r.Fail == nil {
		return nil
	}
	return r.Fail(op, hash)
}

// Get is the record and its revision; (nil, 0, nil) when there is none.
func (r *Records) Get(_ context.Context, hash string) (*stream.Record, uint64, error) {
	if err := r.fail("get", hash); err != nil {
		return nil, 0, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.recs[hash]
	if !ok {
		return nil, 0, nil
	}
	rec := e.rec
	return &rec, e.rev, nil
}

// Put writes rec at rev (0: create).
func (r *Records) Put(_ context.Context, hash string, rec *stream.Record, rev uint64) (uint64, error) {
	if err := r.fail("put", hash); err != nil {
		return 0, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.recs[hash]
	if (rev == 0 && ok) || (rev != 0 && (!ok || e.rev != rev)) {
		return 0, stream.ErrConflict
	}
	r.rev++
	r.recs[hash] = entry{*rec, r.rev}
	return r.rev, nil
}

// Delete removes the record if still at rev.
func (r *Records) Delete(_ context.Context, hash string, rev uint64) error {
	if err := r.fail("delete", hash); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.recs[hash]; !ok || e.rev != rev {
		return fmt.Errorf("delete ticket record %s: %w", hash, stream.ErrConflict)
	}
	delete(r.recs, hash)
	return nil
}

// Set stores rec as if another worker had written it.
func (r *Records) Set(hash string, rec stream.Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rev++
	r.recs[hash] = entry{rec, r.rev}
}

// Record is the current record of hash (nil: none).
func (r *Records) Record(hash string) *stream.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.recs[hash]
	if !ok {
		return nil
	}
	return &e.rec
}

// PutLabelJob stores a pending label edit.
func (r *Records) PutLabelJob(_ context.Context, job stream.LabelJob) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.jobs[job.Hash] = job
	return nil
}

// DeleteLabelJob removes it.
func (r *Records) DeleteLabelJob(_ context.Context, hash string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.jobs, hash)
	return nil
}

// LabelJobs lists the pending edits, by hash.
func (r *Records) LabelJobs(context.Context) (iter.Seq2[stream.LabelJob, error], error) {
	r.mu.Lock()
	jobs := slices.Collect(maps.Values(r.jobs))
	r.mu.Unlock()
	slices.SortFunc(jobs, func(a, b stream.LabelJob) int {
		if a.Hash < b.Hash {
			return -1
		}
		return 1
	})
	return func(yield func(stream.LabelJob, error) bool) {
		for _, j := range jobs {
			if !yield(j, nil) {
				return
			}
		}
	}, nil
}

// Publisher records what is published to FORMS_DLQ; Fail, if set, may
// refuse a publish.
type Publisher struct {
	mu   sync.Mutex
	Msgs []*nats.Msg
	Fail func(n int) error // n: the 1-based attempt
	n    int
}

// PublishMsg stores msg and acknowledges it with the next sequence.
func (p *Publisher) PublishMsg(_ context.Context, msg *nats.Msg, _ ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	if p.Fail != nil {
		if err := p.Fail(p.n); err != nil {
			return nil, err
		}
	}
	// As JetStream within its duplicate window (here the window never
	// ends): a message id seen before is answered with the stored
	// message's sequence, and not stored.
	if id := msg.Header.Get(nats.MsgIdHdr); id != "" {
		for i, m := range p.Msgs {
			if m.Header.Get(nats.MsgIdHdr) == id {
				return &jetstream.PubAck{Stream: stream.DLQ, Sequence: uint64(i + 1), Duplicate: true}, nil
			}
		}
	}
	p.Msgs = append(p.Msgs, msg)
	return &jetstream.PubAck{Stream: stream.DLQ, Sequence: uint64(len(p.Msgs))}, nil
}

// DeadLetters are the published dead letters, parsed.
func (p *Publisher) DeadLetters() []stream.DeadLetter {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]stream.DeadLetter, len(p.Msgs))
	for i, m := range p.Msgs {
		out[i] = stream.ParseDeadLetter(m.Header)
	}
	return out
}

// Jira is a Jira made of funcs; a nil func answers as an empty, healthy
// Jira would (creates get keys CP-1, CP-2, …).
type Jira struct {
	MetaFunc         func(ctx context.Context, t ticket.Target) (*ticket.Meta, error)
	CreateFunc       func(ctx context.Context, req *ticket.Request) (string, error)
	BulkCreateFunc   func(ctx context.Context, reqs []*ticket.Request) ([]jira.Result, error)
	FindByLabelsFunc func(ctx context.Context, labels []string) (map[string][]string, error)
	FindByTextFunc   func(ctx context.Context, project string, words []string) (map[string][]string, error)
	AddLabelsFunc    func(ctx context.Context, key string, labels ...string) error
	IssuesByKeyFunc  func(ctx context.Context, keys []string) ([]jira.Issue, error)
	LatestKeyFunc    func(ctx context.Context, project string) (string, error)

	mu      sync.Mutex
	n       int
	Created []*ticket.Request // every request a create or bulk create carried
	Calls   map[string]int    // by method name
}

func (j *Jira) call(name string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.Calls == nil {
		j.Calls = map[string]int{}
	}
	j.Calls[name]++
}

// Count is how often name was called.
func (j *Jira) Count(name string) int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.Calls[name]
}

// NextKey is a fresh issue key.
func (j *Jira) NextKey() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.n++
	return fmt.Sprintf("CP-%d", j.n)
}

func (j *Jira) sent(reqs ...*ticket.Request) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.Created = append(j.Created, reqs...)
}

func (j *Jira) Meta(ctx context.Context, t ticket.Target) (*ticket.Meta, error) {
	j.call("Meta")
	if j.MetaFunc == nil {
		return nil, errors.New("ticketingtest: no MetaFunc")
	}
	return j.MetaFunc(ctx, t)
}

func (j *Jira) Create(ctx context.Context, req *ticket.Request) (string, error) {
	j.call("Create")
	j.sent(req)
	if j.CreateFunc != nil {
		return j.CreateFunc(ctx, req)
	}
	return j.NextKey(), nil
}

func (j *Jira) BulkCreate(ctx context.Context, reqs []*ticket.Request) ([]jira.Result, error) {
	j.call("BulkCreate")
	j.sent(reqs...)
	if j.BulkCreateFunc != nil {
		return j.BulkCreateFunc(ctx, reqs)
	}
	out := make([]jira.Result, len(reqs))
	for i := range out {
		out[i].Key = j.NextKey()
	}
	return out, nil
}

func (j *Jira) FindByLabels(ctx context.Context, labels []string) (map[string][]string, error) {
	j.call("FindByLabels")
	if j.FindByLabelsFunc != nil {
		return j.FindByLabelsFunc(ctx, labels)
	}
	return map[string][]string{}, nil
}

func (j *Jira) FindByText(ctx context.Context, project string, words []string) (map[string][]string, error) {
	j.call("FindByText")
	if j.FindByTextFunc != nil {
		return j.FindByTextFunc(ctx, project, words)
	}
	return map[string][]string{}, nil
}

func (j *Jira) AddLabels(ctx context.Context, key string, labels ...string) error {
	j.call("AddLabels")
	if j.AddLabelsFunc != nil {
		return j.AddLabelsFunc(ctx, key, labels...)
	}
	return nil
}

func (j *Jira) IssuesByKey(ctx context.Context, keys []string) ([]jira.Issue, error) {
	j.call("IssuesByKey")
	if j.IssuesByKeyFunc != nil {
		return j.IssuesByKeyFunc(ctx, keys)
	}
	return nil, nil
}

func (j *Jira) LatestKey(ctx context.Context, project string) (string, error) {
	j.call("LatestKey")
	if j.LatestKeyFunc != nil {
		return j.LatestKeyFunc(ctx, project)
	}
	return "", nil
}
