package jira

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cowjacket/formjira/internal/ticket"
)

// MaxBulk is the most issues Jira accepts in one bulk create.
const MaxBulk = 50

// Result is one request's outcome in a bulk create.
type Result struct {
	Key string
	Err error // an *APIError for this element, or the whole call's error
}

type issueRef struct {
	ID  string `json:"id"`
	Key string `json:"key"`
}

// Create creates one ticket: a JSM customer request when req names a
// service desk, otherwise a platform issue.
func (c *Client) Create(ctx context.Context, req *ticket.Request) (string, error) {
	if req.ServiceDeskID != "" {
		return c.createRequest(ctx, req)
	}
	_, raw, err := c.do(ctx, c.platform, OpCreate, http.MethodPost, c.api("issue"), req.Payload())
	if err != nil {
		return "", err
	}
	var ref issueRef
	if err := json.Unmarshal(raw, &ref); err != nil || ref.Key == "" {
		// Created, but we cannot tell which key: reconcile by label.
		return "", &APIError{Op: OpCreate, Status: http.StatusBadGateway, Messages: []string{"unreadable answer to a successful create"}}
	}
	return ref.Key, nil
}

func (c *Client) createRequest(ctx context.Context, req *ticket.Request) (string, error) {
	_, raw, err := c.do(ctx, c.desk, OpRequestCreate, http.MethodPost, "rest/servicedeskapi/request", req.Payload())
	if err != nil {
		return "", err
	}
	var ref struct {
		IssueKey string `json:"issueKey"`
	}
	if err := json.Unmarshal(raw, &ref); err != nil || ref.IssueKey == "" {
		return "", &APIError{Op: OpRequestCreate, Status: http.StatusBadGateway, Messages: []string{"unreadable answer to a successful create"}}
	}
	return ref.IssueKey, nil
}

// AddLabels adds labels to an existing issue: a JSM request type without a
// labels field cannot carry them at creation (Request.LabelsPending).
func (c *Client) AddLabels(ctx context.Context, key string, labels ...string) error {
	ops := make([]any, len(labels))
	for i, l := range labels {
		ops[i] = map[string]any{"add": l}
	}
	body := map[string]any{"update": map[string]any{"labels": ops}}
	_, _, err := c.do(ctx, c.platform, OpAddLabels, http.MethodPut, c.api("issue/"+url.PathEscape(key)), body)
	return err
}

// BulkCreate creates up to MaxBulk platform issues in one call. The slice
// has one Result per request, in order. Jira answers 201 when any issue was
// created and lists the failed ones by failedElementNumber (a 0-based
// request index); go-atlassian's typed bulk call drops those per-field
// errors, so the body is read here. Jira documents no order for the
// created issues (JRACLOUD-81005: "it is possible that some issues will
// fail to get created so simply associating items in the arrays would not
// work"), so each is read back by id (bulkfetch, a direct read: no search
// lag) and matched to its request by the hash label it carries.
//
// The error is the whole call's (nothing known to be created, or outcome
// unknown: see MaybeCreated); then every Result carries it too. A 400 that
// names no element is ErrBatchRejected: send the requests one by one.
func (c *Client) BulkCreate(ctx context.Context, reqs []*ticket.Request) ([]Result, error) {
	if len(reqs) == 0 {
		return nil, nil
	}
	if len(reqs) > MaxBulk {
		return nil, fmt.Errorf("jira bulk create: %d requests, at most %d: %w", len(reqs), MaxBulk, ErrPermanent)
	}
	updates := make([]map[string]any, len(reqs))
	for i, r := range reqs {
		updates[i] = r.Payload()
	}
	status, raw, err := c.do(ctx, c.platform, OpBulkCreate, http.MethodPost, c.api("issue/bulk"), map[string]any{"issueUpdates": updates})
	var ae *APIError
	if err != nil && !(errors.As(err, &ae) && status == http.StatusBadRequest && !ae.Anonymous) {
		return fill(len(reqs), err), err
	}
	var body struct {
		Issues []issueRef `json:"issues"`
		// A list of element errors, or — when Jira refuses the request as
		// a whole — the usual error object ({"errorMessages": […],
		// "errors": {}}).
		Errors json.RawMessage `json:"errors"`
	}
	var elements []bulkElementError
	jerr := json.Unmarshal(raw, &body)
	if jerr == nil && len(body.Errors) > 0 && body.Errors[0] == '[' {
		jerr = json.Unmarshal(body.Errors, &elements)
	}
	if jerr != nil {
		if err == nil {
			err = &APIError{Op: OpBulkCreate, Status: http.StatusBadGateway, Messages: []string{"unreadable answer to a bulk create"}}
		}
		return fill(len(reqs), err), err
	}
	if status == http.StatusBadRequest && len(elements) == 0 {
		err = fmt.Errorf("%w: %w", ErrBatchRejected, err)
		return fill(len(reqs), err), err
	}
	out := make([]Result, len(reqs))
	failed := make([]bool, len(reqs))
	for _, e := range elements {
		n := e.FailedElementNumber
		if n < 0 || n >= len(reqs) {
			continue
		}
		st := e.Status
		if st == 0 {
			st = http.StatusBadRequest
		}
		failed[n] = true
		fe := e.ElementErrors.Errors
		if len(fe) == 0 {
			fe = nil
		}
		out[n].Err = &APIError{Op: OpBulkCreate, Status: st, Messages: e.ElementErrors.ErrorMessages, FieldErrors: fe}
	}
	// The caller's pacer turn was for the create: the read-back takes its own.
	c.matchCreated(context.WithValue(ctx, pacedKey{}, nil), reqs, body.Issues, out, failed)
	return out, nil
}

// bulkElementError is one entry of a bulk create's "errors" list.
type bulkElementError struct {
	Status        int `json:"status"`
	ElementErrors struct {
		ErrorMessages []string          `json:"errorMessages"`
		Errors        map[string]string `json:"errors"`
	} `json:"elementErrors"`
	FailedElementNumber int `json:"failedElementNumber"`
}

// matchCreated fills the Results of the requests that did not fail with
// the key of the created issue carrying their hash label. A request whose
// issue cannot be told (the read-back failed, or no issue carries its label)
// gets an unknown outcome: the caller reconciles it, never creates blindly.
func (c *Client) matchCreated(ctx context.Context, reqs []*ticket.Request, created []issueRef, out []Result, failed []bool) {
	ids := make([]string, 0, len(created))
	for _, is := range created {
		ids = append(ids, cmp.Or(is.ID, is.Key))
	}
	byLabel := map[string]string{}
	issues, err := c.readBack(ctx, ids)
	for _, is := range issues {
		for _, l := range is.Labels {
			byLabel[l] = is.Key
		}
	}
	unknown := func(why string) error {
		return &APIError{Op: OpBulkCreate, Status: http.StatusBadGateway, Messages: []string{why}}
	}
	for i, r := range reqs {
		switch {
		case failed[i]:
		case byLabel[r.HashLabel] != "":
			out[i].Key = byLabel[r.HashLabel]
		case err != nil:
			out[i].Err = unknown("created issues could not be read back to tell which is which: " + err.Error())
		default:
			out[i].Err = unknown("no created issue carries the request's hash label")
		}
	}
}

// readBack is IssuesByKey, tried again on a throttled or failed answer: a
// read may be repeated, and without it the bulk's outcome is unknown and
// costs a reconciliation.
func (c *Client) readBack(ctx context.Context, ids []string) ([]Issue, error) {
	var err error
	for attempt := 1; attempt <= 4; attempt++ {
		var issues []Issue
		if issues, err = c.IssuesByKey(ctx, ids); err == nil || !errors.Is(err, ErrRetryable) {
			return issues, err
		}
		t := time.NewTimer(max(RetryAfter(err), time.Duration(attempt)*250*time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
	}
	return nil, err
}

// Issue is what the reads by key return: enough to tell which request an
// issue was created for.
type Issue struct {
	ID, Key string
	Labels  []string
	// Text is the issue's summary and description as Jira returns them (a
	// string in API v2, a document in v3), for a record hash a JSM request
	// carries before its labels.
	Text string
}

// IssuesByKey reads issues by id or key with POST /issue/bulkfetch, a
// direct read, not a search: it sees an issue at once after its create.
// Up to 100 per call; issues that do not exist (or that the account may not
// see) are simply absent; the answer comes in ascending id order. Issues
// Jira cannot return now (issueErrors) make the read a retryable failure.
// https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issues/#api-rest-api-3-issue-bulkfetch-post
func (c *Client) IssuesByKey(ctx context.Context, keys []string) ([]Issue, error) {
	var out []Issue
	for chunk := range slices.Chunk(keys, 100) {
		if c.dataCenter.Load() {
			// Data Center has no bulkfetch. Its index is written as the
			// issue is made (other cluster nodes follow within seconds, well
			// within the reconcile window), not eventually as Cloud's:
			// search finds a new issue, and a read by key adds nothing.
			return nil, nil
		}
		body := map[string]any{"issueIdsOrKeys": chunk, "fields": []string{"labels", "summary", "description"}}
		_, raw, err := c.do(ctx, c.platform, OpBulkFetch, http.MethodPost, c.api("issue/bulkfetch"), body)
		if c.onDataCenter(ctx, err) {
			return nil, nil
		}
		if err != nil {
			return out, err
		}
		var page struct {
			Issues []struct {
				ID     string          `json:"id"`
				Key    string          `json:"key"`
				Fields json.RawMessage `json:"fields"`
			} `json:"issues"`
			// Issues Jira "can't return due to a retriable error or
			// payload constraint": not absent, so no proof of anything.
			IssueErrors []struct {
				ID           string `json:"id"`
				ErrorMessage string `json:"errorMessage"`
			} `json:"issueErrors"`
		}
		if err := json.Unmarshal(raw, &page); err != nil {
			return out, fmt.Errorf("jira bulkfetch: decode: %w", err)
		}
		if n := len(page.IssueErrors); n > 0 {
			return out, fmt.Errorf("%w: jira bulkfetch: %d issue(s) could not be read now (issue %s: %s)",
				ErrRetryable, n, page.IssueErrors[0].ID, page.IssueErrors[0].ErrorMessage)
		}
		for _, is := range page.Issues {
			var f struct {
				Labels []string `json:"labels"`
			}
			_ = json.Unmarshal(is.Fields, &f)
			out = append(out, Issue{ID: is.ID, Key: is.Key, Labels: f.Labels, Text: string(is.Fields)})
		}
	}
	return out, nil
}

// LatestKey is the project's newest issue key that search knows of ("" for
// none). Search lags, so the true newest key may be higher, never lower:
// a floor for reading later issues back by key.
func (c *Client) LatestKey(ctx context.Context, project string) (string, error) {
	body := map[string]any{"jql": "project = " + strconv.Quote(project) + " ORDER BY created DESC", "fields": []string{"key"}, "maxResults": 1}
	path := c.api("search/jql")
	if c.dataCenter.Load() {
		path = c.api("search")
	}
	_, raw, err := c.do(ctx, c.platform, OpSearch, http.MethodPost, path, body)
	if !c.dataCenter.Load() && c.onDataCenter(ctx, err) {
		return c.LatestKey(ctx, project)
	}
	if err != nil {
		return "", err
	}
	var page struct {
		Issues []struct {
			Key string `json:"key"`
		} `json:"issues"`
	}
	if err := json.Unmarshal(raw, &page); err != nil {
		return "", fmt.Errorf("jira search: decode: %w", err)
	}
	if len(page.Issues) == 0 {
		return "", nil
	}
	return page.Issues[0].Key, nil
}

func fill(n int, err error) []Result {
	out := make([]Result, n)
	for i := range out {
		out[i].Err = err
	}
	return out
}

// FindByLabels looks up many labels in one search: label → keys (oldest
// first). Labels without issues are absent.
func (c *Client) FindByLabels(ctx context.Context, labels []string) (map[string][]string, error) {
	out := map[string][]string{}
	if len(labels) == 0 {
		return out, nil
	}
	want := map[string]bool{}
	quoted := make([]string, len(labels))
	for i, l := range labels {
		want[l] = true
		quoted[i] = strconv.Quote(l)
	}
	jql := "labels in (" + strings.Join(quoted, ", ") + ") ORDER BY created ASC"
	err := c.search(ctx, jql, []string{"labels"}, func(key string, fields json.RawMessage) {
		var f struct {
			Labels []string `json:"labels"`
		}
		_ = json.Unmarshal(fields, &f)
		for _, l := range f.Labels {
			if want[l] {
				out[l] = append(out[l], key)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// FindByText looks up issues of project whose summary or description
// holds each word verbatim (a record hash, which a JSM request without a
// labels field carries in its description from the create on): word →
// keys (oldest first); words without issues are absent. Jira's text search
// ("text ~") matches by its own tokenizing and stemming, so every hit is
// checked here to really contain the word. One search per word.
func (c *Client) FindByText(ctx context.Context, project string, words []string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, w := range words {
		if w == "" || strings.ContainsAny(w, "\"\\") {
			return nil, fmt.Errorf("jira search: %q cannot be searched as one word: %w", w, ErrPermanent)
		}
		if _, done := out[w]; done {
			continue
		}
		jql := "project = " + strconv.Quote(project) + " AND text ~ " + strconv.Quote(`"`+w+`"`) + " ORDER BY created ASC"
		lw := strings.ToLower(w)
		err := c.search(ctx, jql, []string{"summary", "description"}, func(key string, fields json.RawMessage) {
			// The raw fields (a string in v2, a document in v3) hold the
			// word as sent: it is letters and digits only.
			if strings.Contains(strings.ToLower(string(fields)), lw) {
				out[w] = append(out[w], key)
			}
		})
		if err != nil {
			return nil, err
		}
		if len(out[w]) == 0 {
			delete(out, w)
		}
	}
	return out, nil
}

// search runs jql and calls fn with each issue's key and requested fields.
// Jira Cloud's is the enhanced /search/jql (token paging; the old /search
// is gone there, CHANGE-2046); Jira Data Center has only /search (startAt
// paging) and answers /search/jql 404, which switches this client to it.
// https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-search/#api-rest-api-3-search-jql-post
// https://developer.atlassian.com/server/jira/platform/rest/v11002/api-group-search/#api-api-2-search-post
func (c *Client) search(ctx context.Context, jql string, fields []string, fn func(key string, fields json.RawMessage)) error {
	if !c.dataCenter.Load() {
		err := c.searchPaged(ctx, jql, fields, fn, false)
		if !c.onDataCenter(ctx, err) {
			return err
		}
	}
	return c.searchPaged(ctx, jql, fields, fn, true)
}

// onDataCenter reports whether err, a 404 to one of Cloud's endpoints,
// comes from a Jira Data Center, as serverInfo's deploymentType confirms:
// a proxy's 404, or a Cloud site being moved, must not switch a Cloud
// client to the /search Cloud removed. Once confirmed, it stays so.
func (c *Client) onDataCenter(ctx context.Context, err error) bool {
	if !missing(err) {
		return false
	}
	if c.dataCenter.Load() {
		return true
	}
	dt, ierr := c.DeploymentType(ctx)
	if ierr != nil || dt == "" || dt == "Cloud" {
		return false
	}
	c.dataCenter.Store(true)
	return true
}

// searchPages bounds a search: the queries here match a handful of issues.
const searchPages = 100

// searchPaged pages a search: Cloud's by nextPageToken (until none or
// isLast), Data Center's by startAt (until total).
func (c *Client) searchPaged(ctx context.Context, jql string, fields []string, fn func(key string, fields json.RawMessage), startAt bool) error {
	path, token, start := c.api("search/jql"), "", 0
	if startAt {
		path = c.api("search")
	}
	for range searchPages {
		body := map[string]any{"jql": jql, "fields": fields, "maxResults": 100}
		switch {
		case startAt:
			body["startAt"] = start
		case token != "":
			body["nextPageToken"] = token
		}
		_, raw, err := c.do(ctx, c.platform, OpSearch, http.MethodPost, path, body)
		if err != nil {
			return err
		}
		var page struct {
			Issues []struct {
				Key    string          `json:"key"`
				Fields json.RawMessage `json:"fields"`
			} `json:"issues"`
			NextPageToken string `json:"nextPageToken"`
			IsLast        *bool  `json:"isLast"`
			Total         int    `json:"total"`
		}
		if err := json.Unmarshal(raw, &page); err != nil {
			return fmt.Errorf("jira search: decode: %w", err)
		}
		for _, is := range page.Issues {
			fn(is.Key, is.Fields)
		}
		start, token = start+len(page.Issues), page.NextPageToken
		if startAt && (len(page.Issues) == 0 || start >= page.Total) ||
			!startAt && (token == "" || page.IsLast != nil && *page.IsLast) {
			return nil
		}
	}
	return fmt.Errorf("jira search: more than %d pages match %s", searchPages, jql)
}

// missing: Jira has no such REST resource (404), as Data Center answers
// Cloud's endpoints.
func missing(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound && !ae.Anonymous
}
