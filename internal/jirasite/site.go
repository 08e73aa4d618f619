// Package jirasite is what every ticketer replica shares about the one
// Jira site it writes to, through KV bucket FORMS_JIRA: whether Jira is up
// (a circuit) and how fast it may be called (the pace, passed to each
// replica's jira.Pacer).
//
// The circuit. Calls that fail as an outage would — no answer, 5xx — make
// a replica suspicious; a health probe (GET /myself) then decides: if it
// fails too, Jira as a whole is down and the circuit opens for every replica
// (one failing request of a bad event among good ones does not open it:
// the probe succeeds, and the event's failures stay the event's). While it
// is open nothing but probes reaches Jira: the jira.Client's gate refuses
// every other call, workers stop pulling and hold what they have. One
// replica at a time probes (claimed in the KV entry), with backoff; the
// first probe that succeeds closes it for all.
package jirasite

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/jira"
)

// State is the circuit's.
type State int

const (
	Closed   State = iota // Jira works: calls flow
	HalfOpen              // a probe is under way
	Open                  // Jira is down: only probes
)

func (s State) String() string { return [...]string{"closed", "half-open", "open"}[s] }

// circuit is the shared entry "circuit" of FORMS_JIRA.
type circuit struct {
	State      string        `json:"state"` // closed | open
	Since      time.Time     `json:"since"`
	Reason     string        `json:"reason,omitempty"`
	By         string        `json:"by,omitempty"` // the replica that opened or closed it
	ProbeAfter time.Time     `json:"probe_after,omitzero"`
	ProbeBy    string        `json:"probe_by,omitempty"`
	ProbeUntil time.Time     `json:"probe_until,omitzero"`
	Backoff    time.Duration `json:"backoff_ns,omitempty"`
}

// Options tune a Site; zero values take the defaults in brackets.
type Options struct {
	// Suspect is how many calls in a row must fail as an outage would
	// before a probe is made [3].
	Suspect int
	// ProbeMin and ProbeMax bound the backoff between probes while open
	// [1s, 30s]; ProbeTimeout bounds one probe [10s].
	ProbeMin, ProbeMax, ProbeTimeout time.Duration
	// Heartbeat is how often the replica says it is alive, for the pace's
	// share [5s].
	Heartbeat time.Duration
	// Changed, if set, is told every state change of this replica's view
	// (for metrics, alerts and counters); down is how long Jira was down on
	// a close; mine says this replica made the change (so one replica
	// counts an outage, not all).
	Changed func(s State, reason string, down time.Duration, mine bool)
}

// Site is this replica's view. Gate and Result are the jira.Client's hooks.
type Site struct {
	probe func(context.Context) error
	pacer *jira.Pacer
	log   *slog.Logger
	opt   Options
	id    string

	mu        sync.Mutex
	kv        jetstream.KeyValue // nil until Attach
	state     State
	since     time.Time
	reason    string
	failing   int       // calls in a row failed as an outage would
	answered  time.Time // the last call Jira answered (not as an outage would)
	probing   bool      // this replica probes (suspicion or half-open)
	wake      chan struct{}
	replicas  map[string]time.Time
	lastShare float64
}

// New is a site for this replica. probe must make one call that only a
// working Jira answers (it is sent past the gate: mark it jira.Probe).
func New(probe func(context.Context) error, pacer *jira.Pacer, log *slog.Logger, opt Options) *Site {
	if opt.Suspect <= 0 {
		opt.Suspect = 3
	}
	opt.ProbeMin = cmpOr(opt.ProbeMin, time.Second)
	opt.ProbeMax = cmpOr(opt.ProbeMax, 30*time.Second)
	opt.ProbeTimeout = cmpOr(opt.ProbeTimeout, 10*time.Second)
	opt.Heartbeat = cmpOr(opt.Heartbeat, 5*time.Second)
	host, _ := os.Hostname()
	return &Site{probe: probe, pacer: pacer, log: log, opt: opt, id: key(host + "-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano()%1e6, 10)),
		since: time.Now(), wake: make(chan struct{}), replicas: map[string]time.Time{}}
}

func cmpOr(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// key makes s a KV key token.
func key(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

// Gate refuses calls while Jira is down (jira.Options.Gate).
func (s *Site) Gate(op string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == Closed {
		return nil
	}
	return fmt.Errorf("%s: %w", op, jira.ErrCircuitOpen)
}

// Result counts call outcomes (jira.Options.Result): Suspect outage-like
// failures in a row start a probe.
func (s *Site) Result(op string, err error) {
	if errors.Is(err, jira.ErrCircuitOpen) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !jira.Down(err) {
		s.failing, s.answered = 0, time.Now()
		return
	}
	s.failing++
	if s.failing >= s.opt.Suspect && s.state == Closed && !s.probing {
		s.probing = true
		last := err.Error()
		go s.suspect(last)
	}
}

// AnsweredSince reports whether Jira answered any call of this replica
// after t: whether it worked while a failing event failed (issue 14 counts
// only those failures; the circuit opens only after several).
func (s *Site) AnsweredSince(t time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.answered.After(t)
}

// Up reports whether Jira is up, and the state and since when.
func (s *Site) Up() (bool, State, time.Time, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state == Closed, s.state, s.since, s.reason
}

// WaitUp blocks while the circuit is not closed.
func (s *Site) WaitUp(ctx context.Context) error {
	for {
		s.mu.Lock()
		up, wake := s.state == Closed, s.wake
		s.mu.Unlock()
		if up {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		}
	}
}

// suspect probes after a run of failures; a failed probe opens the circuit.
func (s *Site) suspect(last string) {
	ctx, cancel := context.WithTimeout(context.Background(), s.opt.ProbeTimeout)
	err := s.probe(jira.Probe(ctx))
	cancel()
	s.mu.Lock()
	s.probing = false
	s.failing = 0
	s.mu.Unlock()
	if err == nil || !jira.Down(err) {
		s.log.Debug("Jira answers the health probe; the failures were the requests'", "last_failure", last)
		return
	}
	s.open(fmt.Sprintf("%s; the health probe failed too: %v", last, err))
}

// open opens the circuit here and for everyone.
func (s *Site) open(reason string) {
	now := time.Now()
	c := circuit{State: "open", Since: now, Reason: reason, By: s.id, ProbeAfter: now.Add(s.opt.ProbeMin), Backoff: s.opt.ProbeMin}
	s.mu.Lock()
	already := s.state != Closed
	kv := s.kv
	s.mu.Unlock()
	if already {
		return
	}
	if kv != nil {
		if cur, rev, err := s.read(context.Background()); err == nil && cur.State == "open" {
			c = cur // another replica was first: join its view
		} else if err := s.write(context.Background(), c, rev); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
			s.log.Warn("could not share the open circuit; this replica holds alone", "err", err)
		}
	}
	s.apply(c)
}

// apply sets this replica's view to c.
func (s *Site) apply(c circuit) {
	s.mu.Lock()
	prev, since := s.state, s.since
	next := Closed
	if c.State == "open" {
		next = Open
	}
	if next == prev {
		s.mu.Unlock()
		return
	}
	s.state, s.reason = next, c.Reason
	if !c.Since.IsZero() {
		s.since = c.Since
	} else {
		s.since = time.Now()
	}
	close(s.wake)
	s.wake = make(chan struct{})
	down := s.since.Sub(since)
	s.mu.Unlock()
	switch next {
	case Open:
		s.log.Error("JIRA UNREACHABLE: circuit open; holding events (none is lost or counted as failed), probing until it answers", "reason", c.Reason)
	case Closed:
		s.log.Info("Jira answers again: circuit closed; resuming", "down_for", down.Round(time.Millisecond).String())
	}
	if s.opt.Changed != nil {
		s.opt.Changed(next, c.Reason, down, c.By == s.id)
	}
}

// ID is this replica's name in FORMS_JIRA.
func (s *Site) ID() string { return s.id }
