package jirasite

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The entries of FORMS_JIRA.
const (
	circuitKey    = "circuit"
	holdKey       = "hold"
	pacePrefix    = "pace."
	replicaPrefix = "replica."
)

// pace is a lane's site rate after a 429, shared ("pace.<op>").
type pace struct {
	Op      string    `json:"op"`
	Rate    float64   `json:"rate"`
	Refused float64   `json:"refused"` // the site rate Jira refused
	At      time.Time `json:"at"`
	By      string    `json:"by"`
}

// hold is a quota pause one replica met ("hold"): Jira's "pause all API
// requests until the window resets" is for the whole site.
type hold struct {
	Until time.Time `json:"until"`
	By    string    `json:"by"`
}

// Attach shares this replica's view through kv (FORMS_JIRA).
func (s *Site) Attach(kv jetstream.KeyValue) {
	s.mu.Lock()
	s.kv = kv
	s.mu.Unlock()
	s.pacer.OnDecrease(func(op string, rate, refused float64) {
		b, _ := json.Marshal(pace{Op: op, Rate: rate, Refused: refused, At: time.Now().UTC(), By: s.id})
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, err := kv.Put(ctx, pacePrefix+key(op), b); err != nil {
			s.log.Debug("could not share a slow-down", "op", op, "err", err)
		}
	})
	s.pacer.OnHold(func(until time.Time) {
		b, _ := json.Marshal(hold{Until: until.UTC(), By: s.id})
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, err := kv.Put(ctx, holdKey, b); err != nil {
			s.log.Debug("could not share a quota pause", "until", until, "err", err)
		}
	})
}

func (s *Site) read(ctx context.Context) (circuit, uint64, error) {
	s.mu.Lock()
	kv := s.kv
	s.mu.Unlock()
	var c circuit
	if kv == nil {
		return c, 0, errors.New("not shared")
	}
	e, err := kv.Get(ctx, circuitKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return circuit{State: "closed"}, 0, nil
	}
	if err != nil {
		return c, 0, err
	}
	if err := json.Unmarshal(e.Value(), &c); err != nil {
		return circuit{State: "closed"}, e.Revision(), nil
	}
	return c, e.Revision(), nil
}

// write stores c if the entry is still at rev (0: absent).
func (s *Site) write(ctx context.Context, c circuit, rev uint64) error {
	s.mu.Lock()
	kv := s.kv
	s.mu.Unlock()
	if kv == nil {
		return nil
	}
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if rev == 0 {
		_, err = kv.Create(ctx, circuitKey, b)
	} else {
		_, err = kv.Update(ctx, circuitKey, b, rev)
	}
	return err
}

// Run keeps the view in step with the other replicas and probes while the
// circuit is open, until ctx ends.
func (s *Site) Run(ctx context.Context) {
	go s.watch(ctx)
	go s.heartbeats(ctx)
	for ctx.Err() == nil {
		s.mu.Lock()
		state, wake := s.state, s.wake
		s.mu.Unlock()
		if state == Closed {
			select {
			case <-ctx.Done():
				return
			case <-wake:
			}
			continue
		}
		s.probeOnce(ctx)
	}
}

// probeOnce waits for the next probe's turn, claims it (one replica
// probes), probes, and shares the outcome.
func (s *Site) probeOnce(ctx context.Context) {
	c, rev, err := s.read(ctx)
	shared := err == nil
	if !shared || rev == 0 {
		// Not shared, or nobody's entry (ours could not be written): this
		// replica's open circuit stands, and only a probe closes it.
		c = circuit{State: "open", ProbeAfter: time.Now().Add(s.opt.ProbeMin), Backoff: s.opt.ProbeMin}
		s.mu.Lock()
		c.Since, c.Reason = s.since, s.reason
		s.mu.Unlock()
		if shared && s.write(ctx, c, 0) == nil {
			c, rev, err = s.read(ctx) // shared now
			shared = err == nil && rev != 0
		}
	}
	if c.State != "open" {
		s.apply(c)
		return
	}
	now := time.Now()
	at := c.ProbeAfter
	if c.ProbeBy != "" && c.ProbeUntil.After(at) {
		at = c.ProbeUntil // someone probes: wait for their answer
	}
	if d := at.Sub(now); d > 0 {
		s.mu.Lock()
		wake := s.wake
		s.mu.Unlock()
		t := time.NewTimer(min(d, s.opt.ProbeMax))
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C:
		case <-wake:
		}
		return
	}
	if shared {
		c.ProbeBy, c.ProbeUntil = s.id, now.Add(s.opt.ProbeTimeout+time.Second)
		if err := s.write(ctx, c, rev); err != nil {
			return // another replica took this turn
		}
		_, rev, _ = s.read(ctx)
	}
	pctx, cancel := context.WithTimeout(ctx, s.opt.ProbeTimeout)
	err = s.probe(pctx)
	cancel()
	if err == nil {
		closed := circuit{State: "closed", Since: time.Now(), By: s.id, Reason: "the health probe succeeded"}
		if werr := s.write(ctx, closed, rev); werr != nil && shared {
			s.log.Warn("could not share that Jira is back; the others find out by their own probes", "err", werr)
		}
		s.apply(closed)
		return
	}
	c.Backoff = min(max(2*c.Backoff, s.opt.ProbeMin), s.opt.ProbeMax)
	c.ProbeAfter, c.ProbeBy, c.ProbeUntil = time.Now().Add(c.Backoff), "", time.Time{}
	s.log.Warn("Jira still unreachable", "probe_err", err.Error(), "next_probe_in", c.Backoff.String())
	_ = s.write(ctx, c, rev)
}

// watch applies what the other replicas write.
func (s *Site) watch(ctx context.Context) {
	for ctx.Err() == nil {
		s.mu.Lock()
		kv := s.kv
		s.mu.Unlock()
		if kv == nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		w, err := kv.WatchAll(ctx)
		if err != nil {
			time.Sleep(time.Second)
			continue
		}
		for e := range w.Updates() {
			if e != nil && e.Operation() == jetstream.KeyValuePut {
				s.take(e.Key(), e.Value())
			}
		}
		_ = w.Stop()
	}
}

func (s *Site) take(k string, v []byte) {
	switch {
	case k == circuitKey:
		var c circuit
		if json.Unmarshal(v, &c) == nil {
			s.apply(c)
		}
	case k == holdKey:
		var h hold
		if json.Unmarshal(v, &h) == nil && h.By != s.id && time.Until(h.Until) > 0 {
			s.pacer.HoldAll(h.Until)
		}
	case strings.HasPrefix(k, pacePrefix):
		var p pace
		if json.Unmarshal(v, &p) == nil && p.By != s.id && time.Since(p.At) < time.Minute {
			s.pacer.Adopt(p.Op, p.Rate, p.Refused)
		}
	case strings.HasPrefix(k, replicaPrefix):
		var at time.Time
		if json.Unmarshal(v, &at) == nil {
			s.mu.Lock()
			s.replicas[strings.TrimPrefix(k, replicaPrefix)] = at
			s.mu.Unlock()
			s.reshare()
		}
	}
}

// heartbeats say this replica is alive, so each paces at its share.
func (s *Site) heartbeats(ctx context.Context) {
	t := time.NewTicker(s.opt.Heartbeat)
	defer t.Stop()
	for {
		s.mu.Lock()
		kv := s.kv
		s.mu.Unlock()
		if kv != nil {
			b, _ := json.Marshal(time.Now().UTC())
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, _ = kv.Put(pctx, replicaPrefix+s.id, b)
			cancel()
		}
		s.reshare()
		select {
		case <-ctx.Done():
			if kv != nil {
				dctx, cancel := context.WithTimeout(context.Background(), time.Second)
				_ = kv.Delete(dctx, replicaPrefix+s.id) // a clean exit leaves no share
				cancel()
			}
			return
		case <-t.C:
		}
	}
}

// reshare sets the pacer's share to 1/live replicas (this one included).
func (s *Site) reshare() {
	s.mu.Lock()
	n := 1
	for id, at := range s.replicas {
		if id != s.id && time.Since(at) < 3*s.opt.Heartbeat {
			n++
		}
	}
	f := 1 / float64(n)
	changed := f != s.lastShare
	s.lastShare = f
	s.mu.Unlock()
	if changed {
		s.pacer.SetShare(f)
		s.log.Info("sharing Jira's pace", "replicas", n)
	}
}
