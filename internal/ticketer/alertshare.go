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
	// unclaimed: kinds whose firing went out without a claim (before
	// attach, FORMS_JIRA not answering): their RESOLVED goes out too.
	unclaimed map[alert.Kind]bool
}

// announced is a kind's entry: the last state sent, and when.
type announced struct {
	Firing bool      `json:"firing"`
	At     time.Time `json:"at"`
}

func newSharedAlerts(next alert.Notifier, every time.Duration, log *slog.Logger) *sharedAlerts {
	return &sharedAlerts{next: next, every: every, log: log, queue: make(chan alert.Alert, 64), unclaimed: map[alert.Kind]bool{}}
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
		s.forward(a, true) // a storm of them: no claim, but none lost
	}
}

// forward hands a to the sender: a RESOLVED ends what some replica
// announced; a firing sent unclaimed is remembered, so that its RESOLVED is
// sent whatever FORMS_JIRA says.
func (s *sharedAlerts) forward(a alert.Alert, unclaimed bool) {
	s.mu.Lock()
	switch {
	case a.Resolved:
		// Sent whether or not this sender announced the firing: some
		// replica did (twice rather than never).
		a.Elsewhere = true
		delete(s.unclaimed, a.Kind)
	case unclaimed:
		s.unclaimed[a.Kind] = true
	default: // a won firing: the entry now says firing
		delete(s.unclaimed, a.Kind)
	}
	s.mu.Unlock()
	s.next.Notify(a)
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
					s.forward(a, true)
				default:
					return
				}
			}
		case a := <-s.queue:
			switch s.claim(ctx, a) {
			case claimWon:
				s.forward(a, false)
			case claimUnknown:
				s.forward(a, true)
			case claimLost:
				if a.Resolved && s.takeUnclaimed(a.Kind) {
					s.forward(a, true) // ours went out unclaimed: end it
				}
			}
		}
	}
}

func (s *sharedAlerts) takeUnclaimed(k alert.Kind) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	was := s.unclaimed[k]
	delete(s.unclaimed, k)
	return was
}

type claimResult int

const (
	claimWon     claimResult = iota // this write moved the kind's entry: send
	claimLost                       // announced already (or nothing to resolve)
	claimUnknown                    // FORMS_JIRA did not answer: send unclaimed
)

// claim tries to move the kind's entry to a's state.
func (s *sharedAlerts) claim(ctx context.Context, a alert.Alert) claimResult {
	s.mu.Lock()
	kv := s.kv
	s.mu.Unlock()
	if kv == nil {
		return claimUnknown
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
		return claimUnknown
	default:
		rev = e.Revision()
		_ = json.Unmarshal(e.Value(), &cur)
	}
	now := time.Now()
	switch {
	case a.Resolved && !cur.Firing:
		return claimLost // announced resolved, or never firing
	case !a.Resolved && cur.Firing && now.Sub(cur.At) < s.every:
		return claimLost // another replica announced it
	}
	b, _ := json.Marshal(announced{Firing: !a.Resolved, At: now})
	if rev == 0 {
		_, err = kv.Create(ctx, key, b)
	} else {
		_, err = kv.Update(ctx, key, b, rev)
	}
	if stream.CASConflict(err) {
		return claimLost // another replica's write won
	}
	if err != nil {
		s.log.Debug("alert announcement not written; sending", "kind", string(a.Kind), "err", err)
		return claimUnknown
	}
	return claimWon
}
