package deploy_test

// A simulation of what a cluster does when a new version of capture or
// ticketer is applied: the Deployment controller's rolling update, the
// ReplicaSet controller's choice of pods to delete, the kubelet's readiness
// probes, `kubectl rollout status`, and (for capture) the replication slot
// that admits one reader. The strategy, replicas, minReadySeconds,
// progressDeadlineSeconds, probes and grace period come from the shipped
// manifest, decoded into the k8s.io/api types and defaulted as the API
// server does; what each version of the binary answers on /readyz is the
// variable under test.
//
// The controller logic follows kubernetes/kubernetes (read at commit
// 95f08499d652a6211121d8af35f470609217c730 for this test):
//
//   - pkg/controller/deployment/rolling.go: rolloutRolling (scale up, and
//     only when nothing was scaled up, scale down), reconcileNewReplicaSet,
//     reconcileOldReplicaSets (maxScaledDown = allPods - minAvailable -
//     newRSUnavailable), cleanupUnhealthyReplicas (old pods that are not
//     available go first, within maxScaledDown), and
//     scaleDownOldReplicaSetsForRollingUpdate (only while available pods
//     exceed minAvailable).
//   - pkg/controller/deployment/util/deployment_util.go: NewRSNewReplicas
//     (up to replicas + maxSurge pods counted by spec.replicas),
//     ResolveFenceposts / MaxUnavailable, DeploymentComplete,
//     DeploymentProgressing, DeploymentTimedOut.
//   - pkg/controller/deployment/progress.go: syncRolloutStatus (the
//     Progressing condition, ProgressDeadlineExceeded).
//   - pkg/controller/deployment/sync.go calculateStatus, and the ReplicaSet
//     controller's status: terminating pods are not counted.
//   - pkg/controller/controller_utils.go ActivePodsWithRanks: a ReplicaSet
//     deletes not-Ready pods before Ready ones; below that the order depends
//     on things this model does not know (node placement, ready time
//     buckets, deletion cost, UIDs), so the simulation tries every order.
//   - pkg/api/v1/pod IsPodAvailable: Ready for more than minReadySeconds.
//   - pkg/apis/apps/v1 and core/v1 defaults (SetDefaults_Deployment,
//     SetDefaults_Probe, SetDefaults_PodSpec).
//   - staging/src/k8s.io/kubectl/pkg/polymorphichelpers/rollout_status.go
//     DeploymentStatusViewer: what `kubectl rollout status` waits for.
//
// Where the model has a choice it cannot make (which pod a ReplicaSet
// deletes, which of two waiting standbys wins the slot), run explores every
// one, and the tests judge every path. Standbys poll in the worst phase: a
// whole STANDBY_POLL after the slot was released (or after they connected).

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const (
	simTick = 100 * time.Millisecond
	never   = time.Duration(-1)

	reasonNewRSCreated   = "NewReplicaSetCreated"
	reasonRSUpdated      = "ReplicaSetUpdated"
	reasonNewRSAvailable = "NewReplicaSetAvailable"
	reasonTimedOut       = "ProgressDeadlineExceeded"
)

// version is what one release of a binary does in a pod, as far as a
// rollout can see it.
type version struct {
	name string
	// connect: how long after the container starts the binary is connected
	// to its dependencies and set up (capture: PostgreSQL and NATS;
	// ticketer: NATS, streams and consumer). never: it never is.
	connect time.Duration
	// standbyReady (capture): /readyz answers 200 for a connected standby
	// too, not only for the active capture.
	standbyReady bool
	// refused (ticketer): Jira answers 401 this long after the container
	// starts, and /readyz answers 503 from then on (0: never).
	refused time.Duration
	// drain: SIGTERM to exit (the binaries promise ≤ 10 s).
	drain time.Duration
}

// rollSpec is what the simulation reads from a Deployment.
type rollSpec struct {
	name                     string
	replicas                 int32
	maxSurge, maxUnavailable int32 // resolved against replicas
	rawSurge                 int32 // maxSurge as NewRSNewReplicas scales it
	minReady, deadline       time.Duration
	probe                    corev1.Probe // readiness, defaulted
	grace                    time.Duration
}

// rollSpecOf reads d's rollout parameters, defaulted as the API server
// defaults them.
func rollSpecOf(t *testing.T, d *appsv1.Deployment) rollSpec {
	t.Helper()
	d = d.DeepCopy()
	defaultDeployment(d)
	if d.Spec.Paused {
		t.Fatalf("deployment %s is paused: no rollout ever starts", d.Name)
	}
	if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
		t.Fatalf("deployment %s: strategy %s: the simulation models RollingUpdate only", d.Name, d.Spec.Strategy.Type)
	}
	replicas := *d.Spec.Replicas
	ru := d.Spec.Strategy.RollingUpdate
	raw, err := intstr.GetScaledValueFromIntOrPercent(ru.MaxSurge, int(replicas), true)
	if err != nil {
		t.Fatalf("deployment %s: maxSurge: %v", d.Name, err)
	}
	surge, unavailable := resolveFenceposts(t, ru.MaxSurge, ru.MaxUnavailable, replicas)
	unavailable = min(unavailable, replicas) // MaxUnavailable
	if len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("deployment %s: the simulation models one container per pod", d.Name)
	}
	c := d.Spec.Template.Spec.Containers[0]
	if c.ReadinessProbe == nil {
		t.Fatalf("deployment %s: no readiness probe", d.Name)
	}
	probe := *c.ReadinessProbe
	defaultProbe(&probe)
	return rollSpec{
		name:           d.Name,
		replicas:       replicas,
		maxSurge:       surge,
		maxUnavailable: unavailable,
		rawSurge:       int32(raw),
		minReady:       time.Duration(d.Spec.MinReadySeconds) * time.Second,
		deadline:       time.Duration(*d.Spec.ProgressDeadlineSeconds) * time.Second,
		probe:          probe,
		grace:          time.Duration(*d.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second,
	}
}

// defaultDeployment is SetDefaults_Deployment and the parts of
// SetDefaults_PodSpec the simulation reads.
func defaultDeployment(d *appsv1.Deployment) {
	if d.Spec.Replicas == nil {
		d.Spec.Replicas = ptr(int32(1))
	}
	s := &d.Spec.Strategy
	if s.Type == "" {
		s.Type = appsv1.RollingUpdateDeploymentStrategyType
	}
	if s.Type == appsv1.RollingUpdateDeploymentStrategyType {
		if s.RollingUpdate == nil {
			s.RollingUpdate = &appsv1.RollingUpdateDeployment{}
		}
		if s.RollingUpdate.MaxUnavailable == nil {
			s.RollingUpdate.MaxUnavailable = ptr(intstr.FromString("25%"))
		}
		if s.RollingUpdate.MaxSurge == nil {
			s.RollingUpdate.MaxSurge = ptr(intstr.FromString("25%"))
		}
	}
	if d.Spec.RevisionHistoryLimit == nil {
		d.Spec.RevisionHistoryLimit = ptr(int32(10))
	}
	if d.Spec.ProgressDeadlineSeconds == nil {
		d.Spec.ProgressDeadlineSeconds = ptr(int32(600))
	}
	if d.Spec.Template.Spec.TerminationGracePeriodSeconds == nil {
		d.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr(int64(30))
	}
}

// defaultProbe is SetDefaults_Probe.
func defaultProbe(p *corev1.Probe) {
	if p.TimeoutSeconds == 0 {
		p.TimeoutSeconds = 1
	}
	if p.PeriodSeconds == 0 {
		p.PeriodSeconds = 10
	}
	if p.SuccessThreshold == 0 {
		p.SuccessThreshold = 1
	}
	if p.FailureThreshold == 0 {
		p.FailureThreshold = 3
	}
}

// resolveFenceposts is deploymentutil.ResolveFenceposts.
func resolveFenceposts(t *testing.T, maxSurge, maxUnavailable *intstr.IntOrString, desired int32) (int32, int32) {
	t.Helper()
	surge, err := intstr.GetScaledValueFromIntOrPercent(intstr.ValueOrDefault(maxSurge, intstr.FromInt32(0)), int(desired), true)
	if err != nil {
		t.Fatalf("maxSurge: %v", err)
	}
	unavailable, err := intstr.GetScaledValueFromIntOrPercent(intstr.ValueOrDefault(maxUnavailable, intstr.FromInt32(0)), int(desired), false)
	if err != nil {
		t.Fatalf("maxUnavailable: %v", err)
	}
	if surge == 0 && unavailable == 0 {
		unavailable = 1
	}
	return int32(surge), int32(unavailable)
}

func ptr[T any](v T) *T { return &v }

// rollout is one simulated upgrade: from (nil: a first install) to to.
type rollout struct {
	spec     rollSpec
	from, to *version
	// slot: the pods compete for one replication slot (capture); standbys
	// poll for it every standbyPoll.
	slot        bool
	standbyPoll time.Duration
}

type simPod struct {
	name  string
	rev   int // 0 old, 1 new
	v     *version
	start time.Duration

	ready            bool
	readySince       time.Duration
	okRun, failRun   int32
	nextProbe        time.Duration
	terminating      bool
	exitAt           time.Duration
	gone             bool
	connectedAtStart bool // a pod of the old version, running long before the rollout
}

// healthy: connected and set up, and not refused by Jira. A terminating
// pod is neither streaming new rows nor standing by.
func (p *simPod) healthy(now time.Duration) bool {
	switch {
	case p.terminating:
		return false
	case !p.connectedAtStart && (p.v.connect == never || now < p.start+p.v.connect):
		return false
	case p.v.refused > 0 && now >= p.start+p.v.refused:
		return false
	}
	return true
}

func (p *simPod) connectedAt() time.Duration {
	if p.connectedAtStart {
		return p.start
	}
	return p.start + p.v.connect
}

type simRS struct {
	rev      int
	replicas int32 // spec.replicas
}

type rsStatus struct{ replicas, ready, available int32 }

type deployStatus struct{ replicas, updated, ready, available int32 }

type progressCond struct {
	status     bool
	reason     string
	lastUpdate time.Duration
}

// rolloutResult is what one path of a rollout did.
type rolloutResult struct {
	path []int

	done     bool // `kubectl rollout status` reported success
	doneAt   time.Duration
	failed   bool // it reported "exceeded its progress deadline"
	failedAt time.Duration
	waiting  string // its last message while neither

	gaps       []time.Duration // capture: slot released → taken again
	activeRev  int             // capture: the version holding the slot at the end (-1: none)
	oldDeleted int             // old-version pods the ReplicaSets deleted
	minHealthy int32           // the fewest healthy (consuming/streaming or standing by) pods until done
	events     []string
}

func (r rolloutResult) String() string {
	var b strings.Builder
	switch {
	case r.done:
		fmt.Fprintf(&b, "rollout status: complete at %v", r.doneAt)
	case r.failed:
		fmt.Fprintf(&b, "rollout status: exceeded its progress deadline at %v", r.failedAt)
	default:
		fmt.Fprintf(&b, "rollout status: still waiting (%s)", r.waiting)
	}
	fmt.Fprintf(&b, "; takeover gaps %v; old pods deleted %d; fewest healthy pods %d; slot held by rev %d at the end; choices %v",
		r.gaps, r.oldDeleted, r.minHealthy, r.activeRev, r.path)
	return b.String()
}

type sim struct {
	r      rollout
	now    time.Duration
	pods   []*simPod
	rss    []*simRS // old (when upgrading), then new
	status deployStatus
	cond   progressCond

	holder   *simPod
	released time.Duration
	everHeld bool

	choose func(n int) int
	res    rolloutResult
	names  map[int]int
}

// explore runs r along every path of its choices.
func explore(t *testing.T, r rollout) []rolloutResult {
	t.Helper()
	var results []rolloutResult
	pending := [][]int{nil}
	for len(pending) > 0 {
		prefix := pending[len(pending)-1]
		pending = pending[:len(pending)-1]
		var taken, sizes []int
		choose := func(n int) int {
			if n == 1 {
				return 0
			}
			k := 0
			if i := len(taken); i < len(prefix) {
				k = prefix[i]
			}
			taken = append(taken, k)
			sizes = append(sizes, n)
			return k
		}
		res := runRollout(r, choose)
		res.path = taken
		results = append(results, res)
		for i := len(prefix); i < len(taken); i++ {
			for k := 1; k < sizes[i]; k++ {
				pending = append(pending, append(slices.Clone(taken[:i]), k))
			}
		}
		if len(results) > 10000 {
			t.Fatalf("%s: more than 10000 paths", r.spec.name)
		}
	}
	return results
}

func runRollout(r rollout, choose func(int) int) rolloutResult {
	s := &sim{r: r, choose: choose, names: map[int]int{}}
	s.res.activeRev = -1
	s.res.minHealthy = 1 << 30
	d := r.spec.replicas
	if r.from != nil {
		// The old version's steady state: running for an hour, one of its
		// captures holding the slot.
		old := &simRS{rev: 0, replicas: d}
		s.rss = append(s.rss, old)
		for range d {
			p := s.newPod(0, r.from)
			p.start, p.connectedAtStart = -time.Hour, true
			p.nextProbe = time.Duration(len(s.pods)) * simTick
		}
		if r.slot {
			s.holder, s.everHeld = s.pods[0], true
		}
		for _, p := range s.pods {
			if s.readyz(p) {
				p.ready, p.readySince = true, -time.Hour
			}
		}
		st := s.rsStatusOf(old)
		s.status = deployStatus{replicas: st.replicas, updated: st.replicas, ready: st.ready, available: st.available}
	}
	// The template changes (or the Deployment is created): a new
	// ReplicaSet, sized by NewRSNewReplicas (getNewReplicaSet).
	newRS := &simRS{rev: 1}
	s.rss = append(s.rss, newRS)
	newRS.replicas = s.newRSNewReplicas()
	s.cond = progressCond{status: true, reason: reasonNewRSCreated, lastUpdate: 0}
	s.logf("new ReplicaSet, %d replicas", newRS.replicas)

	horizon := r.spec.deadline + 2*time.Minute
	for s.now = 0; s.now <= horizon; s.now += simTick {
		s.kubelet()
		if r.slot {
			s.slot()
		}
		s.syncDeployment()
		s.replicaSets()
		s.observe()
		if s.rolloutStatus() {
			break
		}
	}
	if s.holder != nil {
		s.res.activeRev = s.holder.rev
	}
	return s.res
}

func (s *sim) logf(format string, args ...any) {
	s.res.events = append(s.res.events, fmt.Sprintf("%6.1fs  ", s.now.Seconds())+fmt.Sprintf(format, args...))
}

func (s *sim) newPod(rev int, v *version) *simPod {
	which := map[int]string{0: "old", 1: "new"}[rev]
	s.names[rev]++
	p := &simPod{
		name: fmt.Sprintf("%s-%s-%d", s.r.spec.name, which, s.names[rev]), rev: rev, v: v, start: s.now,
		nextProbe: s.now + time.Duration(s.r.spec.probe.InitialDelaySeconds)*time.Second,
	}
	s.pods = append(s.pods, p)
	return p
}

// readyz is what the pod's /readyz answers now.
func (s *sim) readyz(p *simPod) bool {
	if !p.healthy(s.now) {
		return false
	}
	if !s.r.slot {
		return true
	}
	return s.holder == p || p.v.standbyReady
}

// kubelet: readiness probes, and pods that finish terminating.
func (s *sim) kubelet() {
	pr := s.r.spec.probe
	for _, p := range s.pods {
		if p.gone {
			continue
		}
		if p.terminating {
			if s.now >= p.exitAt {
				p.gone = true
				s.logf("%s exited", p.name)
			}
			continue
		}
		if s.now < p.nextProbe {
			continue
		}
		p.nextProbe += time.Duration(pr.PeriodSeconds) * time.Second
		if s.readyz(p) {
			p.okRun, p.failRun = p.okRun+1, 0
			if !p.ready && p.okRun >= pr.SuccessThreshold {
				p.ready, p.readySince = true, s.now
				s.logf("%s Ready", p.name)
			}
		} else {
			p.okRun, p.failRun = 0, p.failRun+1
			if p.ready && p.failRun >= pr.FailureThreshold {
				p.ready = false
				s.logf("%s not Ready", p.name)
			}
		}
	}
}

// slot: the replication slot admits one reader. When its holder has exited,
// a healthy pod takes it at its first poll (worst phase: a whole
// STANDBY_POLL after the release, or after connecting).
func (s *sim) slot() {
	if s.holder != nil && s.holder.gone {
		s.logf("slot released by %s", s.holder.name)
		s.holder, s.released = nil, s.now
	}
	if s.holder != nil {
		return
	}
	var due []*simPod
	for _, p := range s.pods {
		if p.gone || !p.healthy(s.now) {
			continue
		}
		if s.now >= max(s.released, p.connectedAt())+s.r.standbyPoll {
			due = append(due, p)
		}
	}
	if len(due) == 0 {
		return
	}
	p := due[s.choose(len(due))]
	s.holder = p
	if s.everHeld {
		s.res.gaps = append(s.res.gaps, s.now-s.released)
	}
	s.everHeld = true
	s.logf("%s took the slot", p.name)
}

func (s *sim) podsOf(rs *simRS) []*simPod {
	var out []*simPod
	for _, p := range s.pods {
		if p.rev == rs.rev && !p.terminating && !p.gone {
			out = append(out, p)
		}
	}
	return out
}

func (s *sim) available(p *simPod) bool {
	return p.ready && (s.r.spec.minReady == 0 || p.readySince+s.r.spec.minReady < s.now)
}

func (s *sim) rsStatusOf(rs *simRS) rsStatus {
	var st rsStatus
	for _, p := range s.podsOf(rs) {
		st.replicas++
		if p.ready {
			st.ready++
		}
		if s.available(p) {
			st.available++
		}
	}
	return st
}

func (s *sim) newRS() *simRS { return s.rss[len(s.rss)-1] }

func (s *sim) oldRS() *simRS {
	if len(s.rss) == 2 {
		return s.rss[0]
	}
	return nil
}

// newRSNewReplicas is deploymentutil.NewRSNewReplicas for RollingUpdate.
func (s *sim) newRSNewReplicas() int32 {
	d, newRS := s.r.spec.replicas, s.newRS()
	var current int32
	for _, rs := range s.rss {
		current += rs.replicas
	}
	maxTotal := d + s.r.spec.rawSurge
	if current >= maxTotal {
		return newRS.replicas
	}
	return newRS.replicas + min(maxTotal-current, d-newRS.replicas)
}

// syncDeployment is rolloutRolling.
func (s *sim) syncDeployment() {
	if !s.reconcileNewReplicaSet() {
		s.reconcileOldReplicaSets()
	}
	s.syncRolloutStatus()
}

func (s *sim) reconcileNewReplicaSet() bool {
	d, newRS := s.r.spec.replicas, s.newRS()
	switch {
	case newRS.replicas == d:
		return false
	case newRS.replicas > d:
		newRS.replicas = d
		return true
	}
	n := s.newRSNewReplicas()
	if n == newRS.replicas {
		return false
	}
	s.logf("new ReplicaSet scaled %d → %d", newRS.replicas, n)
	newRS.replicas = n
	return true
}

func (s *sim) reconcileOldReplicaSets() bool {
	old, newRS := s.oldRS(), s.newRS()
	if old == nil || old.replicas == 0 {
		return false
	}
	allPods := old.replicas + newRS.replicas
	minAvailable := s.r.spec.replicas - s.r.spec.maxUnavailable
	newUnavailable := newRS.replicas - s.rsStatusOf(newRS).available
	maxScaledDown := allPods - minAvailable - newUnavailable
	if maxScaledDown <= 0 {
		return false
	}
	// cleanupUnhealthyReplicas
	var cleaned int32
	if st := s.rsStatusOf(old); old.replicas != st.available {
		cleaned = min(maxScaledDown, old.replicas-st.available)
		s.logf("old ReplicaSet scaled %d → %d (unhealthy replicas)", old.replicas, old.replicas-cleaned)
		old.replicas -= cleaned
	}
	// scaleDownOldReplicaSetsForRollingUpdate
	var scaled int32
	if available := s.rsStatusOf(old).available + s.rsStatusOf(newRS).available; available > minAvailable && old.replicas > 0 {
		scaled = min(old.replicas, available-minAvailable)
		s.logf("old ReplicaSet scaled %d → %d", old.replicas, old.replicas-scaled)
		old.replicas -= scaled
	}
	return cleaned+scaled > 0
}

// syncRolloutStatus: calculateStatus and the Progressing condition.
func (s *sim) syncRolloutStatus() {
	var ns deployStatus
	for _, rs := range s.rss {
		st := s.rsStatusOf(rs)
		ns.replicas += st.replicas
		ns.ready += st.ready
		ns.available += st.available
	}
	ns.updated = s.rsStatusOf(s.newRS()).replicas
	d := s.r.spec.replicas
	complete := ns.updated == d && ns.replicas == d && ns.available == d
	progressing := ns.updated > s.status.updated ||
		ns.replicas-ns.updated < s.status.replicas-s.status.updated ||
		ns.ready > s.status.ready || ns.available > s.status.available
	if !(ns.replicas == ns.updated && s.cond.reason == reasonNewRSAvailable) {
		switch {
		case complete:
			s.cond = progressCond{status: true, reason: reasonNewRSAvailable, lastUpdate: s.now}
		case progressing:
			s.cond = progressCond{status: true, reason: reasonRSUpdated, lastUpdate: s.now}
		case s.cond.reason == reasonTimedOut:
		case s.cond.lastUpdate+s.r.spec.deadline < s.now:
			s.cond = progressCond{status: false, reason: reasonTimedOut, lastUpdate: s.now}
			s.logf("Progressing=False %s", reasonTimedOut)
		}
	}
	s.status = ns
}

// replicaSets: each ReplicaSet creates or deletes pods to match its spec.
func (s *sim) replicaSets() {
	for _, rs := range s.rss {
		v := s.r.to
		if rs.rev == 0 {
			v = s.r.from
		}
		pods := s.podsOf(rs)
		for i := int32(len(pods)); i < rs.replicas; i++ {
			p := s.newPod(rs.rev, v)
			s.logf("%s created", p.name)
		}
		excess := len(pods) - int(rs.replicas)
		if excess <= 0 {
			continue
		}
		// Not-Ready pods first (ActivePodsWithRanks); the rest is a choice.
		notReady := slices.DeleteFunc(slices.Clone(pods), func(p *simPod) bool { return p.ready })
		ready := slices.DeleteFunc(slices.Clone(pods), func(p *simPod) bool { return !p.ready })
		for range excess {
			group := &notReady
			if len(notReady) == 0 {
				group = &ready
			}
			i := s.choose(len(*group))
			p := (*group)[i]
			*group = slices.Delete(*group, i, i+1)
			p.terminating = true
			p.exitAt = s.now + min(p.v.drain, s.r.spec.grace)
			if rs.rev == 0 {
				s.res.oldDeleted++
			}
			what := ""
			if s.holder == p {
				what = " (the active capture)"
			}
			s.logf("%s deleted%s", p.name, what)
		}
	}
}

// observe records what the contract cares about while the rollout runs.
func (s *sim) observe() {
	if s.res.done {
		return
	}
	var healthy int32
	for _, p := range s.pods {
		if !p.gone && p.healthy(s.now) {
			healthy++
		}
	}
	s.res.minHealthy = min(s.res.minHealthy, healthy)
}

// rolloutStatus is kubectl's DeploymentStatusViewer; it reports whether the
// simulation is over: rollout status failed, or it succeeded and every old
// pod has exited and the slot is held again.
func (s *sim) rolloutStatus() bool {
	if s.res.done {
		for _, p := range s.pods {
			if p.terminating && !p.gone {
				return false
			}
		}
		return !s.r.slot || s.holder != nil
	}
	st, d := s.status, s.r.spec.replicas
	switch {
	case s.cond.reason == reasonTimedOut:
		s.res.failed, s.res.failedAt = true, s.now
		return true
	case st.updated < d:
		s.res.waiting = fmt.Sprintf("%d out of %d new replicas have been updated", st.updated, d)
	case st.replicas > st.updated:
		s.res.waiting = fmt.Sprintf("%d old replicas are pending termination", st.replicas-st.updated)
	case st.available < st.updated:
		s.res.waiting = fmt.Sprintf("%d of %d updated replicas are available", st.available, st.updated)
	default:
		s.res.done, s.res.doneAt = true, s.now
		s.logf("rollout status: successfully rolled out")
	}
	return false
}
