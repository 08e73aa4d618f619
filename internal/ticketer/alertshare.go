package ticketer

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/alert"
	"github.com/cowjacket/formjira/internal/stream"
)

// sharedAlerts lets one replica announce what all of them see: the circuit
// is shared, every replica polls the one consumer's backlog and meets the
// same refused credentials, so each would otherwise send its own "Jira
// unreachable" (and RESOLVED). The announcement per kind is a key in
// FORMS_JIRA (alert.<kind>), written compare-and-set: the replica whose
// write wins sends; a firing kind is not sent again within every. Dead
// letters pass: each replica reports its own. Until attach, and whenever
// FORMS_JIRA does not answer, every alert passes (twice rather than never).
// Notify never blocks: the claims run on their own goroutine.
type sharedAlerts struct {
	next  alert.Notifier
	every time.Duration
	log   *slog.Logger
	queue chan alert.Alert

	mu sync.Mutex
	kv jetstream.KeyValue
}

// announced is a kind's entry: the last state sent, and when.
type announced struct {
	Firing bool      `json:"firing"`
	At     time.Time `json:"at"`
}

func newSharedAlerts(next alert.Notifier, every time.Duration, log *slog.Logger) *sharedAlerts {
	return &sharedAlerts{next: next, every: every, log: log, queue: make(chan alert.Alert, 64)}
}

func (s *sharedAlerts) attach(kv jetstream.KeyValue) {
	s.mu.Lock()
	s.kv = kv
	s.mu.Unlock()
}

// Notify forwards a dead letter at once, queues the rest for their claim.
func (s *sharedAlerts) Notify(a alert.Alert) {
	if a.Kind == alert.DeadLetter {
		s.next.Notify(a)
		return
	}
	select {
	case s.queue <- a:
	default:
		s.next.Notify(a) // a storm of them: no claim, but none lost
	}
}

// run claims and forwards the queued alerts until ctx ends; what is still
// queued then is forwarded unclaimed.
func (s *sharedAlerts) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			for {
				select {
				case a := <-s.queue:
					s.next.Notify(a)
				default:
					return
				}
			}
		case a := <-s.queue:
			if s.claim(ctx, a) {
				s.next.Notify(a)
			}
		}
	}
}

// claim reports whether this replica sends a: the kind's entry moved to
// a's state by this write (or could not be read or written).
func (s *sharedAlerts) claim(ctx context.Context, a alert.Alert) bool {
	s.mu.Lock()
	kv := s.kv
	s.mu.Unlock()
	if kv == nil {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	key := "alert." + string(a.Kind)
	var cur announced
	var rev uint64
	e, err := kv.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil:
		s.log.Debug("alert announcement unreadable; sending", "kind", string(a.Kind), "err", err)
		return true
	default:
		rev = e.Revision()
		_ = json.Unmarshal(e.Value(), &cur)
	}
	now := time.Now()
	switch {
	case a.Resolved && !cur.Firing:
		return false // announced resolved, or never firing
	case !a.Resolved && cur.Firing && now.Sub(cur.At) < s.every:
		return false // another replica announced it
	}
	b, _ := json.Marshal(announced{Firing: !a.Resolved, At: now})
	if rev == 0 {
		_, err = kv.Create(ctx, key, b)
	} else {
		_, err = kv.Update(ctx, key, b, rev)
	}
	if stream.CASConflict(err) {
		return false // another replica's write won
	}
	if err != nil {
		s.log.Debug("alert announcement not written; sending", "kind", string(a.Kind), "err", err)
	}
	return true
}
