package deploy_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The versions a rollout meets. Connecting takes 2 s (a new pod: start,
// PostgreSQL and NATS); draining on SIGTERM 1 s.
var (
	captureBefore13 = &version{name: "capture whose standby is never Ready (before issue 13)", connect: 2 * time.Second, drain: time.Second}
	capture13       = &version{name: "capture whose healthy standby is Ready", connect: 2 * time.Second, standbyReady: true, drain: time.Second}
	captureBroken   = &version{name: "capture that cannot reach PostgreSQL or NATS", connect: never, standbyReady: true, drain: time.Second}

	ticketerGood = &version{name: "ticketer", connect: 2 * time.Second, drain: time.Second}
	// Jira down: /readyz stays 200 (the outage is in the body and the
	// metrics), so for the rollout it is ticketerGood.
	ticketerJiraDown = &version{name: "ticketer during a Jira outage", connect: 2 * time.Second, drain: time.Second}
	// A bad secret: Jira answers 401 at setup, or at the first batch
	// (within 15 s of starting); /readyz answers 503 from then on.
	ticketerBadSecret     = &version{name: "ticketer whose secret Jira refuses at setup", connect: 2 * time.Second, refused: 2 * time.Second, drain: time.Second}
	ticketerBadSecretLate = &version{name: "ticketer whose secret Jira refuses at the first batch (15 s)", connect: 2 * time.Second, refused: 15 * time.Second, drain: time.Second}
)

// loadDeployment decodes the Deployment name from file (strictly, into
// apps/v1).
func loadDeployment(t *testing.T, file, name string) *appsv1.Deployment {
	t.Helper()
	for _, m := range decodeManifests(t, file) {
		if d, ok := m.obj.(*appsv1.Deployment); ok && d.Name == name {
			return d
		}
	}
	t.Fatalf("%s: no Deployment %s", file, name)
	return nil
}

// standbyPoll is capture's STANDBY_POLL in d: its env, else the default.
func standbyPoll(t *testing.T, d *appsv1.Deployment) time.Duration {
	t.Helper()
	v := varDefault(t, "capture", "STANDBY_POLL")
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		if e.Name == "STANDBY_POLL" {
			v = e.Value
		}
	}
	p, err := time.ParseDuration(v)
	if err != nil || p <= 0 {
		t.Fatalf("STANDBY_POLL %q: %v", v, err)
	}
	return p
}

func captureRollout(t *testing.T, file string, from, to *version) rollout {
	t.Helper()
	d := loadDeployment(t, file, "capture")
	return rollout{spec: rollSpecOf(t, d), from: from, to: to, slot: true, standbyPoll: standbyPoll(t, d)}
}

func ticketerRollout(t *testing.T, file string, from, to *version) rollout {
	t.Helper()
	return rollout{spec: rollSpecOf(t, loadDeployment(t, file, "ticketer")), from: from, to: to}
}

// completes lists, for every path where it fails, how the rollout breaks
// what the deploy files promise: `kubectl rollout status` succeeds within
// the progress deadline by itself; during an upgrade there are at every
// moment as many healthy pods as replicas (ticketer: consumers; capture: the
// active one and a standby ready to take over, or two standbys while the
// slot changes hands); for capture, every takeover takes at most
// STANDBY_POLL, there is at most one takeover per old pod, and the new
// version holds the slot at the end.
func completes(r rollout, results []rolloutResult) []string {
	var problems []string
	for _, res := range results {
		var p []string
		if !res.done {
			p = append(p, "kubectl rollout status does not complete: "+res.String())
		}
		if r.slot {
			if res.activeRev != 1 {
				p = append(p, fmt.Sprintf("the new version does not hold the slot at the end (rev %d)", res.activeRev))
			}
			for _, g := range res.gaps {
				if g > r.standbyPoll {
					p = append(p, fmt.Sprintf("a takeover took %v, more than STANDBY_POLL (%v)", g, r.standbyPoll))
				}
			}
			if r.from != nil && len(res.gaps) > int(r.spec.replicas) {
				p = append(p, fmt.Sprintf("%d takeovers for %d old pods", len(res.gaps), r.spec.replicas))
			}
		}
		if r.from != nil && res.minHealthy < r.spec.replicas {
			p = append(p, fmt.Sprintf("only %d healthy pods (of %d replicas) at one point: %s", res.minHealthy, r.spec.replicas,
				map[bool]string{true: "no hot standby", false: "fewer consumers"}[r.slot]))
		}
		if len(p) > 0 {
			problems = append(problems, fmt.Sprintf("path %v: %s", res.path, strings.Join(p, "; ")))
		}
	}
	return problems
}

// stallsSafely lists, for every path where it fails, how a rollout of a
// version that never becomes Ready breaks what the deploy files promise:
// it stops (rollout status fails at the progress deadline) with every old
// pod still running and, for capture, the old active capture streaming
// throughout.
func stallsSafely(r rollout, results []rolloutResult) []string {
	var problems []string
	for _, res := range results {
		var p []string
		if !res.failed {
			p = append(p, "kubectl rollout status does not report the stall: "+res.String())
		}
		if res.oldDeleted > 0 {
			p = append(p, fmt.Sprintf("%d good old pods were deleted for a version that never became available", res.oldDeleted))
		}
		if r.slot && (len(res.gaps) > 0 || res.activeRev != 0) {
			p = append(p, fmt.Sprintf("the old active capture did not keep streaming (gaps %v, slot held by rev %d)", res.gaps, res.activeRev))
		}
		if len(p) > 0 {
			problems = append(problems, fmt.Sprintf("path %v: %s", res.path, strings.Join(p, "; ")))
		}
	}
	return problems
}

// summary is the best and worst path of results, for the log.
func summary(results []rolloutResult) string {
	gaps := func(r rolloutResult) int { return len(r.gaps) }
	worst := slices.MaxFunc(results, func(a, b rolloutResult) int { return gaps(a) - gaps(b) })
	best := slices.MinFunc(results, func(a, b rolloutResult) int { return gaps(a) - gaps(b) })
	return fmt.Sprintf("%d paths\n  best:  %s\n  worst: %s\n%s", len(results), best, worst, strings.Join(worst.events, "\n"))
}

var shippedCapture, shippedTicketer = filepath.Join("k8s", "capture.yaml"), filepath.Join("k8s", "ticketer.yaml")

// TestCaptureRollout: with the shipped manifest and issue 13's readiness,
// an upgrade and a first install complete by themselves at the cost of at
// most one takeover (≤ STANDBY_POLL) per old pod, with a hot standby
// throughout; so does the first upgrade from a version whose standby was
// never Ready; a version that cannot connect, or whose standby is never
// Ready, stalls with both old pods untouched.
func TestCaptureRollout(t *testing.T) {
	for _, tc := range []struct {
		name     string
		from, to *version
		judge    func(rollout, []rolloutResult) []string
	}{
		{"upgrade", capture13, capture13, completes},
		{"first install", nil, capture13, completes},
		{"upgrade from a version whose standby is never Ready", captureBefore13, capture13, completes},
		{"upgrade to a version that cannot connect", capture13, captureBroken, stallsSafely},
		// No strategy completes with a never-Ready standby (complete means
		// every replica available); this one at least breaks nothing.
		{"upgrade to a version whose standby is never Ready", capture13, captureBefore13, stallsSafely},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := captureRollout(t, shippedCapture, tc.from, tc.to)
			results := explore(t, r)
			t.Logf("%s (STANDBY_POLL %v): %s", shippedCapture, r.standbyPoll, summary(results))
			for _, p := range tc.judge(r, results) {
				t.Error(p)
			}
		})
	}
}

// TestTicketerRollout: the shipped ticketer manifest completes an upgrade
// (also during a Jira outage) with three consumers throughout, and a bad
// secret stalls the rollout with the good pods untouched, whether Jira
// refuses it at setup or at the first batch.
func TestTicketerRollout(t *testing.T) {
	for _, tc := range []struct {
		name  string
		to    *version
		judge func(rollout, []rolloutResult) []string
	}{
		{"upgrade", ticketerGood, completes},
		{"upgrade during a Jira outage", ticketerJiraDown, completes},
		{"upgrade with a secret Jira refuses at setup", ticketerBadSecret, stallsSafely},
		{"upgrade with a secret Jira refuses at the first batch", ticketerBadSecretLate, stallsSafely},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ticketerRollout(t, shippedTicketer, ticketerGood, tc.to)
			results := explore(t, r)
			t.Logf("%s: %s", shippedTicketer, summary(results))
			for _, p := range tc.judge(r, results) {
				t.Error(p)
			}
		})
	}
}

// TestRolloutSimulationFindsIssue13 keeps the simulation honest: on the
// manifests as they were before issue 13 (testdata/*-before-13.yaml) it
// must find what the issue reports, so the tests above can fail.
func TestRolloutSimulationFindsIssue13(t *testing.T) {
	before := filepath.Join("testdata", "capture-before-13.yaml")
	for _, tc := range []struct {
		name string
		r    rollout
		// judge, and a phrase its findings must contain on every path
		judge func(rollout, []rolloutResult) []string
		want  string
	}{
		{"capture upgrade, standby never Ready", captureRollout(t, before, captureBefore13, captureBefore13),
			completes, "exceeded its progress deadline"},
		{"capture steady state, standby never Ready", captureRollout(t, before, nil, captureBefore13),
			completes, "exceeded its progress deadline"},
		// maxUnavailable 1 / maxSurge 0 completes once the standby is
		// Ready, but leaves the active capture alone while a pod starts.
		{"capture upgrade, old strategy, standby Ready", captureRollout(t, before, capture13, capture13),
			completes, "no hot standby"},
		// No minReadySeconds: a pod is available before Jira refuses it.
		{"ticketer, defaults, secret refused at the first batch",
			ticketerRollout(t, filepath.Join("testdata", "ticketer-before-13.yaml"), ticketerGood, ticketerBadSecretLate),
			stallsSafely, "good old pods were deleted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			results := explore(t, tc.r)
			problems := tc.judge(tc.r, results)
			t.Logf("%s\n%s", summary(results), strings.Join(problems, "\n"))
			if len(problems) != len(results) {
				t.Errorf("the simulation finds the problem on %d of %d paths, want all", len(problems), len(results))
			}
			for _, p := range problems {
				if !strings.Contains(p, tc.want) {
					t.Errorf("finding %q does not say %q", p, tc.want)
				}
			}
		})
	}
}

// The simulation's own arithmetic, against the controller's documented
// cases (ResolveFenceposts' comment, and the defaults).
func TestRolloutFenceposts(t *testing.T) {
	for _, tc := range []struct {
		replicas            int32
		surge, unavailable  string
		wantSurge, wantUnav int32
	}{
		{2, "0%", "1%", 0, 1}, // resolves to 0/0: maxUnavailable becomes 1
		{2, "1%", "25%", 1, 0},
		{3, "25%", "25%", 1, 0}, // the defaults on 3 replicas
		{2, "1", "0", 1, 0},
	} {
		d := &appsv1.Deployment{}
		d.Spec.Replicas = &tc.replicas
		d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxSurge: ptr(intstr.Parse(tc.surge)), MaxUnavailable: ptr(intstr.Parse(tc.unavailable))}
		s, u := resolveFenceposts(t, d.Spec.Strategy.RollingUpdate.MaxSurge, d.Spec.Strategy.RollingUpdate.MaxUnavailable, tc.replicas)
		if s != tc.wantSurge || u != tc.wantUnav {
			t.Errorf("%d replicas, surge %s, unavailable %s: got %d/%d, want %d/%d", tc.replicas, tc.surge, tc.unavailable, s, u, tc.wantSurge, tc.wantUnav)
		}
	}
}
