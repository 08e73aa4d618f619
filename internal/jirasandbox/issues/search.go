package issues

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/cowjacket/formjira/internal/jirasandbox/jql"
	"github.com/cowjacket/formjira/internal/jirasandbox/wire"
)

// maxReconcile is reconcileIssues' documented limit: "Accepts max 50 ids."
const maxReconcile = 50

// HandleSearch is the enhanced search (/search/jql, GET and POST): token
// paging, no total, only issue ids unless fields are asked for.
//
// Its index is eventually consistent: "The delay might vary from a few
// seconds to minutes" (https://developer.atlassian.com/cloud/jira/platform/search-and-reconcile/),
// for every clause alike, labels and text included. Here an issue stays
// invisible for the SearchDelay in force when the search runs (so a test
// may shorten the lag mid-run), unless its numeric id is listed in
// reconcileIssues: then it is found at once if it matches the JQL.
// https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-search/#api-rest-api-3-search-jql-post
func (s *Service) HandleSearch(w http.ResponseWriter, r *http.Request) {
	var in struct {
		JQL             string   `json:"jql"`
		MaxResults      int      `json:"maxResults"`
		Fields          []string `json:"fields"`
		NextPageToken   string   `json:"nextPageToken"`
		ReconcileIssues []int64  `json:"reconcileIssues"`
	}
	if r.Method == http.MethodPost {
		if !wire.Decode(w, r, &in) {
			return
		}
	} else {
		q := r.URL.Query()
		in.JQL, in.NextPageToken = q.Get("jql"), q.Get("nextPageToken")
		in.MaxResults, _ = strconv.Atoi(q.Get("maxResults"))
		for _, f := range q["fields"] {
			in.Fields = append(in.Fields, wire.SplitList(f)...)
		}
		for _, v := range q["reconcileIssues"] {
			for _, id := range wire.SplitList(v) {
				n, err := strconv.ParseInt(id, 10, 64)
				if err != nil {
					wire.Errors(w, http.StatusBadRequest, []string{fmt.Sprintf("reconcileIssues takes issue ids (numbers), not '%s'.", id)}, nil)
					return
				}
				in.ReconcileIssues = append(in.ReconcileIssues, n)
			}
		}
	}
	if len(in.ReconcileIssues) > maxReconcile {
		wire.Errors(w, http.StatusBadRequest, []string{fmt.Sprintf("reconcileIssues accepts at most %d issue ids; this request has %d.", maxReconcile, len(in.ReconcileIssues))}, nil)
		return
	}
	query, err := jql.Parse(in.JQL)
	if err != nil {
		wire.Errors(w, http.StatusBadRequest, []string{err.Error()}, nil)
		return
	}
	if wire.CallerOf(r).Anonymous {
		// Anonymous access is allowed, and anonymous browses nothing.
		wire.JSON(w, http.StatusOK, map[string]any{"issues": []any{}, "isLast": true})
		return
	}
	for _, p := range query.Projects() {
		if !s.cat.ProjectOK(p) {
			wire.Errors(w, http.StatusBadRequest, []string{fmt.Sprintf("The value '%s' does not exist for the field 'project'.", p)}, nil)
			return
		}
	}
	offset := 0
	if in.NextPageToken != "" {
		b, decErr := base64.RawURLEncoding.DecodeString(in.NextPageToken)
		var err error
		if offset, err = strconv.Atoi(string(b)); decErr != nil || err != nil || offset < 0 {
			wire.Errors(w, http.StatusBadRequest, []string{"The provided next page token is invalid or expired."}, nil)
			return
		}
	}
	limit := in.MaxResults
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 5000)

	visibleBefore := time.Now().Add(-s.policy().SearchDelay)
	s.mu.Lock()
	var hits []*Issue
	for _, is := range slices.Backward(s.issues) { // newest first
		id, _ := strconv.ParseInt(is.ID, 10, 64)
		visible := !is.Created.After(visibleBefore) || slices.Contains(in.ReconcileIssues, id)
		if visible && query.Matches(jql.Doc{Key: is.Key, ID: is.ID, Labels: is.Labels, Fields: is.Fields}, s.cat.ProjectKey(), s.cat.ProjectID()) {
			hits = append(hits, is)
		}
	}
	if query.OldestFirst() {
		slices.Reverse(hits)
	}
	s.mu.Unlock()

	page := hits[min(offset, len(hits)):min(offset+limit, len(hits))]
	issues := make([]map[string]any, 0, len(page))
	for _, is := range page {
		if len(in.Fields) == 0 {
			issues = append(issues, map[string]any{"id": is.ID})
			continue
		}
		issues = append(issues, s.render(r, is, in.Fields))
	}
	resp := map[string]any{"issues": issues, "isLast": offset+limit >= len(hits)}
	if offset+limit < len(hits) {
		resp["nextPageToken"] = base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(offset + limit)))
	}
	wire.JSON(w, http.StatusOK, resp)
}
