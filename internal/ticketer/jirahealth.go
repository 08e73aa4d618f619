package ticketer

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/stream"
)

// jiraHealth keeps what this replica saw of Jira lately and publishes it
// to FORMS_JIRA (health.<replica>) for the console: last success and
// failure, throttling, the latest latencies.
type jiraHealth struct {
	mu        sync.Mutex
	kv        jetstream.KeyValue
	h         stream.JiraHealth
	latencies []float64 // ring of the latest calls, ms
	next      int
	throttles []time.Time // 429s of the last 15 minutes
}

const healthSamples = 256

func newJiraHealth() *jiraHealth { return &jiraHealth{latencies: make([]float64, 0, healthSamples)} }

// observe is told every Jira call's status (0: no answer) and duration.
func (j *jiraHealth) observe(status int, d time.Duration) {
	now := time.Now().UTC()
	j.mu.Lock()
	defer j.mu.Unlock()
	j.h.Requests++
	switch {
	case status >= 200 && status < 300:
		j.h.LastSuccess = now
	case status == 429:
		j.h.Throttled++
		j.h.LastThrottle, j.h.LastFailure = now, now
		j.throttles = append(j.throttles, now)
	case status == 0 || status >= 500:
		j.h.LastFailure = now
	}
	if status != 0 {
		ms := float64(d.Microseconds()) / 1000
		if len(j.latencies) < healthSamples {
			j.latencies = append(j.latencies, ms)
		} else {
			j.latencies[j.next] = ms
			j.next = (j.next + 1) % healthSamples
		}
	}
}

func (j *jiraHealth) attach(kv jetstream.KeyValue) {
	j.mu.Lock()
	j.kv = kv
	j.mu.Unlock()
}

// snapshot is the entry to publish now.
func (j *jiraHealth) snapshot(replica string) (stream.JiraHealth, jetstream.KeyValue) {
	now := time.Now().UTC()
	j.mu.Lock()
	defer j.mu.Unlock()
	cut := 0
	for cut < len(j.throttles) && now.Sub(j.throttles[cut]) > 15*time.Minute {
		cut++
	}
	j.throttles = j.throttles[cut:]
	h := j.h
	h.Replica, h.UpdatedAt, h.Throttled15m = replica, now, int64(len(j.throttles))
	h.LatencyMS = append([]float64(nil), j.latencies...)
	return h, j.kv
}

// run publishes every 5 s and deletes the entry when ctx ends.
func (j *jiraHealth) run(ctx context.Context, replica string) {
	key := stream.JiraHealthPrefix + replica
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		if h, kv := j.snapshot(replica); kv != nil {
			b, _ := json.Marshal(h)
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, _ = kv.Put(pctx, key, b)
			cancel()
		}
		select {
		case <-ctx.Done():
			if _, kv := j.snapshot(replica); kv != nil {
				dctx, cancel := context.WithTimeout(context.Background(), time.Second)
				_ = kv.Delete(dctx, key)
				cancel()
			}
			return
		case <-t.C:
		}
	}
}
