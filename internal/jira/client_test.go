package jira

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cowjacket/formjira/internal/form"
	"github.com/cowjacket/formjira/internal/jirasandbox"
	"github.com/cowjacket/formjira/internal/mapping"
	"github.com/cowjacket/formjira/internal/ticket"
	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

const (
	email = "bot@cowjacket.example"
	token = "very-secret-token"
)

func sandbox(t *testing.T, o jirasandbox.Options) (*jirasandbox.Server, string) {
	t.Helper()
	o.Email, o.APIToken = email, token
	sb := jirasandbox.New(o)
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	return sb, srv.URL
}

func fields(name, dept string, label string) *ticket.Request {
	return &ticket.Request{HashLabel: label, Fields: map[string]any{
		"project": map[string]any{"key": "CP"}, "issuetype": map[string]any{"id": "10003"},
		"summary": "Phone request: " + name, "labels": []any{label},
		"customfield_10070": name, "customfield_10073": map[string]any{"value": dept},
		"customfield_10075": "a@example.com", "customfield_10076": "0042",
		"customfield_10079": map[string]any{"value": "Permanent"}, "customfield_10080": "2025-10-28",
	}}
}

func TestBulkCreateMapsFailedElementsBack(t *testing.T) {
	sb, url := sandbox(t, jirasandbox.Options{})
	c, err := New(Options{URL: url, Email: email, APIToken: token, APIVersion: 2})
	if err != nil {
		t.Fatal(err)
	}
	reqs := []*ticket.Request{
		fields("Ann", "Finance", "cowjacket-a"),
		fields("Bob", "Astrology", "cowjacket-b"),
		fields("Cy", "Sales", "cowjacket-c"),
	}
	res, err := c.BulkCreate(context.Background(), reqs)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Key == "" || res[2].Key == "" || res[1].Key != "" {
		t.Fatalf("results %+v", res)
	}
	var ae *APIError
	if !errors.As(res[1].Err, &ae) || !errors.Is(res[1].Err, ErrPermanent) || ae.FieldErrors["customfield_10073"] == "" {
		t.Fatalf("element 1 error %v", res[1].Err)
	}
	if got := sb.IssueByLabel("cowjacket-c"); len(got) != 1 || got[0].Key != res[2].Key {
		t.Errorf("element 2 key %s, sandbox %v", res[2].Key, got)
	}
	// All refused: Jira answers 400 with the same shape.
	res, err = c.BulkCreate(context.Background(), reqs[1:2])
	if err != nil || !errors.Is(res[0].Err, ErrPermanent) {
		t.Fatalf("all-refused bulk: %v %+v", err, res)
	}
}

// A 400 refusing the bulk as a whole ({"errorMessages": […], "errors": {}},
// no element named) is ErrBatchRejected, never a permanent failure of every
// request in it: the caller (which looks for ErrBatchRejected first) then
// creates them one by one.
func TestBulkRejectedAsAWholeIsBatchRejected(t *testing.T) {
	sb, url := sandbox(t, jirasandbox.Options{BulkReject400Count: 1})
	c, err := New(Options{URL: url, Email: email, APIToken: token, APIVersion: 2})
	if err != nil {
		t.Fatal(err)
	}
	reqs := []*ticket.Request{fields("Ann", "Finance", "cowjacket-a"), fields("Cy", "Sales", "cowjacket-c")}
	res, err := c.BulkCreate(context.Background(), reqs)
	if !errors.Is(err, ErrBatchRejected) {
		t.Fatalf("whole-request 400: %v, want ErrBatchRejected", err)
	}
	for i, r := range res {
		if !errors.Is(r.Err, ErrBatchRejected) || r.Key != "" {
			t.Errorf("request %d: %+v", i, r)
		}
	}
	if n := len(sb.Issues()); n != 0 {
		t.Fatalf("%d issues after a rejected bulk", n)
	}
	if res, err := c.BulkCreate(context.Background(), reqs); err != nil || res[0].Key == "" || res[1].Key == "" {
		t.Errorf("the next bulk: %v %+v", err, res)
	}
}

// A request that waited out its context behind a quota hold never reached
// Jira: retryable, nothing created, and not Jira being down (the circuit
// must not open while Jira only says "later").
func TestPacerWaitIsNotJiraDown(t *testing.T) {
	_, url := sandbox(t, jirasandbox.Options{})
	p := NewPacer(0)
	c, err := New(Options{URL: url, Email: email, APIToken: token, Pacer: p})
	if err != nil {
		t.Fatal(err)
	}
	p.HoldAll(time.Now().Add(time.Minute))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = c.Myself(ctx)
	if err == nil || !errors.Is(err, ErrRetryable) || Down(err) || MaybeCreated(err) {
		t.Errorf("a request held by the pacer: %v (retryable %v, down %v, maybe created %v); want retryable only",
			err, errors.Is(err, ErrRetryable), Down(err), MaybeCreated(err))
	}
}

func TestMaybeCreated(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&APIError{Status: 500}, true},
		{&APIError{Status: 400}, false},
		{&APIError{Status: 429}, false},
		{&APIError{Status: 408}, true}, // a proxy may time out after passing it on
		{&APIError{Status: 401}, false},
		{&APIError{Status: 201, Anonymous: true}, true}, // created for "anyone"
		{&APIError{Status: 403, Anonymous: true}, false},
		{&transportError{op: OpCreate, sent: true, err: errors.New("timeout")}, true},
		{&transportError{op: OpCreate, sent: false, err: errors.New("refused")}, false},
		{fmt.Errorf("x: %w", ErrCircuitOpen), false},
	} {
		if got := MaybeCreated(tc.err); got != tc.want {
			t.Errorf("MaybeCreated(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// Throttled: Jira's pacing, never the event's failure (issue 14).
func TestThrottled(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&APIError{Status: 429}, true},
		{fmt.Errorf("bulk create: %w", &APIError{Status: 429}), true},
		{&waitError{op: OpBulkCreate, err: context.DeadlineExceeded}, true},
		{&APIError{Status: 429, Anonymous: true}, false}, // a credentials problem first
		{&APIError{Status: 503}, false},
		{&APIError{Status: 408}, false},
		{&transportError{op: OpCreate, sent: true, err: errors.New("timeout")}, false},
		{nil, false},
	} {
		if got := Throttled(tc.err); got != tc.want {
			t.Errorf("Throttled(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestErrorsAreClassifiedWithoutSecrets(t *testing.T) {
	sb, url := sandbox(t, jirasandbox.Options{})
	c, _ := New(Options{URL: url, Email: email, APIToken: token})
	sb.SetAuthFailure(401)
	_, err := c.Myself(context.Background())
	if !errors.Is(err, ErrAuth) || errors.Is(err, ErrRetryable) {
		t.Errorf("401: %v", err)
	}
	sb.SetAuthFailure(0)
	sb.SetError5xxRate(1)
	_, err = c.Create(context.Background(), fields("Ann", "Finance", "cowjacket-a"))
	if !errors.Is(err, ErrRetryable) || !MaybeCreated(err) {
		t.Errorf("5xx: %v", err)
	}
	sb.SetError5xxRate(0)
	sb.SetRate(1, 1)
	c.Create(context.Background(), fields("Ann", "Finance", "cowjacket-x"))
	_, err = c.Create(context.Background(), fields("Bob", "Finance", "cowjacket-y"))
	if !errors.Is(err, ErrRetryable) || MaybeCreated(err) || RetryAfter(err) < time.Second {
		t.Errorf("429: %v (retry after %v)", err, RetryAfter(err))
	}
	// Connection refused: provably not sent.
	dead, _ := New(Options{URL: "http://127.0.0.1:1", Email: email, APIToken: token, Timeout: time.Second})
	_, err = dead.Create(context.Background(), fields("Ann", "Finance", "cowjacket-a"))
	if !errors.Is(err, ErrRetryable) || MaybeCreated(err) {
		t.Errorf("refused: %v", err)
	}
	for _, e := range []error{err} {
		if strings.Contains(e.Error(), token) {
			t.Errorf("error leaks the token: %v", e)
		}
	}
}

func TestFindByLabelsAndMeta(t *testing.T) {
	_, url := sandbox(t, jirasandbox.Options{})
	c, _ := New(Options{URL: url, Email: email, APIToken: token, APIVersion: 3})
	ctx := context.Background()
	k, err := c.Create(ctx, fields("Ann", "Finance", "cowjacket-a"))
	if err != nil {
		t.Fatal(err)
	}
	found, err := c.FindByLabels(ctx, []string{"cowjacket-a", "cowjacket-none"})
	if err != nil || len(found["cowjacket-a"]) != 1 || found["cowjacket-a"][0] != k || len(found["cowjacket-none"]) != 0 {
		t.Fatalf("found %v, %v", found, err)
	}
	meta, err := c.Meta(ctx, ticket.Target{Project: "CP", IssueType: "10003"})
	if err != nil || meta.Fields["customfield_10073"].Name != "Department" || len(meta.Fields["customfield_10073"].Allowed) == 0 {
		t.Fatalf("meta %v, %v", meta, err)
	}
	if meta, err = c.Meta(ctx, ticket.Target{Project: "CP", ServiceDeskID: "4", RequestTypeID: "41"}); err != nil || !meta.Fields["customfield_10079"].Required {
		t.Fatalf("jsm meta %v, %v", meta, err)
	}
}

func TestPacerHonoursRetryAfter(t *testing.T) {
	p := NewPacer(0)
	p.Throttled(op, 300*time.Millisecond, "jira-quota-tenant-based", 0)
	start := time.Now()
	if err := p.Wait(context.Background(), op); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 290*time.Millisecond {
		t.Errorf("waited %v, want ≥ 300ms", d)
	}
	if p.Rate(op) > 1000 {
		t.Errorf("rate %v after a 429, want slowed", p.Rate(op))
	}
	_ = http.StatusOK
}

// TestFindByTextFindsJSMRequestByHash: a JSM request carries its record
// hash only in the description until the deferred label edit; FindByText
// finds it there (once the index caught up), with either API version.
func TestFindByTextFindsJSMRequestByHash(t *testing.T) {
	const delay = 200 * time.Millisecond
	_, url := sandbox(t, jirasandbox.Options{SearchDelay: delay})
	m, err := mapping.Load("../../deploy/mapping-jsm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	samples, err := form.Samples()
	if err != nil {
		t.Fatal(err)
	}
	ev := form.NewEvent(samples[0].Columns(), []string{"id"}, nil, &formsv1.Source{}, time.Now())
	ctx := context.Background()
	c, _ := New(Options{URL: url, Email: email, APIToken: token})
	meta, err := c.Meta(ctx, m.Target())
	if err != nil {
		t.Fatal(err)
	}
	req, err := m.Build(ev, meta)
	if err != nil {
		t.Fatal(err)
	}
	if !req.LabelsPending {
		t.Fatal("request type 41 has no labels field: want LabelsPending")
	}
	key, err := c.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	created := time.Now()
	if found, err := c.FindByText(ctx, "CP", []string{ev.GetHash()}); err != nil || (time.Since(created) < delay && len(found) != 0) {
		t.Fatalf("before the index caught up: %v, %v", found, err)
	}
	if found, _ := c.FindByLabels(ctx, []string{req.HashLabel}); len(found) != 0 {
		t.Fatalf("found by label before any label edit: %v", found)
	}
	time.Sleep(time.Until(created.Add(delay + 50*time.Millisecond)))
	for _, v := range []int{2, 3} {
		c, _ := New(Options{URL: url, Email: email, APIToken: token, APIVersion: v})
		found, err := c.FindByText(ctx, "CP", []string{ev.GetHash(), strings.Repeat("0", 64)})
		if err != nil || len(found) != 1 || len(found[ev.GetHash()]) != 1 || found[ev.GetHash()][0] != key {
			t.Errorf("API v%d: found %v, %v; want %s for the hash only", v, found, err, key)
		}
	}
}

// Search order as the queries ask it: FindByLabels lists a label's issues
// oldest first (the first ticket of a request is the one to keep), and
// LatestKey is the newest issue's key.
func TestSearchOrder(t *testing.T) {
	_, url := sandbox(t, jirasandbox.Options{})
	c, err := New(Options{URL: url, Email: email, APIToken: token, APIVersion: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var keys []string
	for _, name := range []string{"Ann", "Bob", "Cy"} {
		k, err := c.Create(ctx, fields(name, "Finance", "cowjacket-same"))
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	found, err := c.FindByLabels(ctx, []string{"cowjacket-same"})
	if err != nil {
		t.Fatal(err)
	}
	if got := found["cowjacket-same"]; !slices.Equal(got, keys) {
		t.Errorf("FindByLabels: %v, want oldest first %v", got, keys)
	}
	if latest, err := c.LatestKey(ctx, "CP"); err != nil || latest != keys[2] {
		t.Errorf("LatestKey: %q %v, want %s", latest, err, keys[2])
	}
}

// SendBy bounds the create itself, not a bulk's read-back: Jira slow
// enough that the POST and the read-back together outlast the deadline
// still answers with the keys; a POST that outlasts it is cut and may
// have created (the caller reconciles); one whose deadline passed before
// it could go is not sent, and says so.
func TestSendByBoundsTheCreateOnly(t *testing.T) {
	const latency = 300 * time.Millisecond
	sb, url := sandbox(t, jirasandbox.Options{Latency: latency})
	c, err := New(Options{URL: url, Email: email, APIToken: token, APIVersion: 2})
	if err != nil {
		t.Fatal(err)
	}
	within := SendBy(context.Background(), time.Now().Add(latency*19/10))
	res, err := c.BulkCreate(within, []*ticket.Request{fields("Ann", "Finance", "cowjacket-a")})
	if err != nil || res[0].Err != nil || res[0].Key == "" {
		t.Fatalf("bulk within its deadline, read back after it: %v %+v; want the key", err, res)
	}
	cut := func() context.Context { return SendBy(context.Background(), time.Now().Add(latency/3)) }
	res, err = c.BulkCreate(cut(), []*ticket.Request{fields("Bob", "Finance", "cowjacket-b")})
	if err == nil || !MaybeCreated(res[0].Err) {
		t.Errorf("bulk past its deadline: %v %+v; want cut, outcome unknown", err, res)
	}
	if _, err := c.Create(cut(), fields("Cy", "Finance", "cowjacket-c")); !MaybeCreated(err) {
		t.Errorf("create past its deadline: %v; want cut, outcome unknown", err)
	}
	sent := len(sb.Requests())
	late := SendBy(context.Background(), time.Now().Add(-time.Millisecond))
	if _, err := c.Create(late, fields("Di", "Finance", "cowjacket-d")); err == nil || MaybeCreated(err) || !errors.Is(err, ErrRetryable) {
		t.Errorf("create whose deadline had passed: %v; want not sent (retryable, not maybe created)", err)
	}
	if n := len(sb.Requests()) - sent; n != 0 {
		t.Errorf("%d requests reached Jira for a create whose deadline had passed", n)
	}
	if n := len(sb.Issues()); n != 1 {
		t.Errorf("%d issues in Jira, want 1 (the cut ones abandoned)", n)
	}
}

// TestIssuesByKeyIssueErrors: bulkfetch lists issues it cannot return now
// under issueErrors; they are not absent, so the read is a retryable
// failure, not an empty answer (which would read as "no such ticket").
func TestIssuesByKeyIssueErrors(t *testing.T) {
	sb, url := sandbox(t, jirasandbox.Options{})
	c, err := New(Options{URL: url, Email: email, APIToken: token, APIVersion: 3})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	key, err := c.Create(ctx, fields("Ann", "Finance", "cowjacket-a"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.IssuesByKey(ctx, []string{key, "CP-999"}); err != nil || len(got) != 1 || got[0].Key != key {
		t.Fatalf("read back: %+v, %v; want %s alone", got, err, key)
	}
	sb.Update(func(o *jirasandbox.Options) { o.BulkFetchErrors = true })
	got, err := c.IssuesByKey(ctx, []string{key})
	if !errors.Is(err, ErrRetryable) || Down(err) || len(got) != 0 {
		t.Errorf("issueErrors: %+v, %v; want a retryable error that is no outage", got, err)
	}
}

// TestDataCenterSearch: Jira Data Center has no enhanced search and no
// bulkfetch (Cloud's; 404 there) but the /search Cloud removed (410
// there): the client finds issues either way, and a read by key on Data
// Center reads nothing rather than failing.
func TestDataCenterSearch(t *testing.T) {
	for _, dc := range []bool{false, true} {
		t.Run(fmt.Sprintf("data center %v", dc), func(t *testing.T) {
			sb, url := sandbox(t, jirasandbox.Options{DataCenter: dc})
			c, err := New(Options{URL: url, Email: email, APIToken: token, APIVersion: 2})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			var keys []string
			for i := range 3 {
				key, err := c.Create(ctx, fields(fmt.Sprint("Ann ", i), "Finance", "cowjacket-a"))
				if err != nil {
					t.Fatal(err)
				}
				keys = append(keys, key)
			}
			got, err := c.FindByLabels(ctx, []string{"cowjacket-a", "cowjacket-none"})
			if err != nil || len(got["cowjacket-a"]) != 3 || len(got["cowjacket-none"]) != 0 {
				t.Errorf("FindByLabels: %v, %v; want the 3 issues", got, err)
			}
			if latest, err := c.LatestKey(ctx, "CP"); err != nil || latest != keys[2] {
				t.Errorf("LatestKey: %q, %v; want %s", latest, err, keys[2])
			}
			read, err := c.IssuesByKey(ctx, keys)
			if want := 3; dc {
				want = 0
				if err != nil || len(read) != want {
					t.Errorf("IssuesByKey on Data Center: %v, %v; want nothing, no error", read, err)
				}
			} else if err != nil || len(read) != want {
				t.Errorf("IssuesByKey on Cloud: %v, %v; want %d", read, err, want)
			}
			var search, legacy int
			for _, r := range sb.Requests() {
				switch {
				case strings.HasSuffix(r.Path, "/search/jql") && r.Status == 200:
					search++
				case strings.HasSuffix(r.Path, "/search") && r.Status == 200:
					legacy++
				}
			}
			if dc && (search != 0 || legacy == 0) || !dc && (legacy != 0 || search == 0) {
				t.Errorf("answered searches: %d enhanced, %d legacy", search, legacy)
			}
		})
	}
}

// TestRateOf: Cloud's X-RateLimit-Limit is a rate; Data Center's bucket
// is FillRate tokens every Interval-Seconds, its Limit the bucket's size.
func TestRateOf(t *testing.T) {
	for _, tc := range []struct {
		h    map[string]string
		want float64
		ok   bool
	}{
		{map[string]string{"X-RateLimit-Limit": "10"}, 10, true},
		{map[string]string{"X-RateLimit-Limit": "50", "X-RateLimit-FillRate": "10", "X-RateLimit-Interval-Seconds": "60"}, 10.0 / 60, true},
		{map[string]string{"X-RateLimit-Limit": "50", "X-RateLimit-FillRate": "10"}, 50, true},
		{map[string]string{}, 0, false},
	} {
		h := http.Header{}
		for k, v := range tc.h {
			h.Set(k, v)
		}
		if got, ok := rateOf(h); ok != tc.ok || got != tc.want {
			t.Errorf("%v: %v %v, want %v %v", tc.h, got, ok, tc.want, tc.ok)
		}
	}
}

// TestCloud404IsNoDataCenter: a 404 in front of a Cloud site (a proxy, a
// site being moved) does not switch the client to Data Center's /search,
// which Cloud removed: serverInfo says Cloud, so the 404 is an error, and
// the next search goes to Cloud's search again.
func TestCloud404IsNoDataCenter(t *testing.T) {
	sb := jirasandbox.New(jirasandbox.Options{Email: email, APIToken: token})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refused := false
		if strings.HasSuffix(r.URL.Path, "/search/jql") {
			once.Do(func() { refused = true })
		}
		if refused {
			http.Error(w, "no such route at the proxy", http.StatusNotFound)
			return
		}
		sb.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c, err := New(Options{URL: srv.URL, Email: email, APIToken: token, APIVersion: 3})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Create(ctx, fields("Ann", "Finance", "cowjacket-a")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.FindByLabels(ctx, []string{"cowjacket-a"}); err == nil {
		t.Error("the proxy's 404: no error")
	}
	if got, err := c.FindByLabels(ctx, []string{"cowjacket-a"}); err != nil || len(got["cowjacket-a"]) != 1 {
		t.Errorf("the next search: %v, %v; want the issue, by Cloud's search", got, err)
	}
}
