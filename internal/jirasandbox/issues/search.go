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
	if s.policy().DataCenter {
		writeNoResource(w, r)
		return
	}
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
	if wire.CallerOf(r).Anonymous {
		// Anonymous access is allowed, and anonymous browses nothing.
		wire.JSON(w, http.StatusOK, map[string]any{"issues": []any{}, "isLast": true})
		return
	}
	hits, ok := s.hits(w, in.JQL, in.ReconcileIssues)
	if !ok {
		return
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

// hits are the issues search sees that match jqlText, in its order; false
// when the query was refused (answered).
func (s *Service) hits(w http.ResponseWriter, jqlText string, reconcile []int64) ([]*Issue, bool) {
	query, err := jql.Parse(jqlText)
	if err != nil {
		wire.Errors(w, http.StatusBadRequest, []string{err.Error()}, nil)
		return nil, false
	}
	for _, p := range query.Projects() {
		if !s.cat.ProjectOK(p) {
			wire.Errors(w, http.StatusBadRequest, []string{fmt.Sprintf("The value '%s' does not exist for the field 'project'.", p)}, nil)
			return nil, false
		}
	}
	visibleBefore := time.Now().Add(-s.policy().SearchDelay)
	s.mu.Lock()
	defer s.mu.Unlock()
	var hits []*Issue
	for _, is := range slices.Backward(s.issues) { // newest first
		id, _ := strconv.ParseInt(is.ID, 10, 64)
		visible := !is.Created.After(visibleBefore) || slices.Contains(reconcile, id)
		if visible && query.Matches(jql.Doc{Key: is.Key, ID: is.ID, Labels: is.Labels, Fields: is.Fields}, s.cat.ProjectKey(), s.cat.ProjectID()) {
			hits = append(hits, is)
		}
	}
	if query.OldestFirst() {
		slices.Reverse(hits)
	}
	return hits, true
}

// HandleLegacySearch is Data Center's /rest/api/N/search (GET and POST):
// startAt paging with a total, maxResults up to 1000 (the default
// jira.search.views.default.max). Cloud removed it: 410 there, with the
// message clients report (https://developer.atlassian.com/changelog/#CHANGE-2046).
// https://developer.atlassian.com/server/jira/platform/rest/v11002/api-group-search/#api-api-2-search-post
func (s *Service) HandleLegacySearch(w http.ResponseWriter, r *http.Request) {
	if !s.policy().DataCenter {
		wire.Errors(w, http.StatusGone, []string{"The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. " +
			"A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"}, nil)
		return
	}
	var in struct {
		JQL        string   `json:"jql"`
		StartAt    int      `json:"startAt"`
		MaxResults int      `json:"maxResults"`
		Fields     []string `json:"fields"`
	}
	if r.Method == http.MethodPost {
		if !wire.Decode(w, r, &in) {
			return
		}
	} else {
		q := r.URL.Query()
		in.JQL = q.Get("jql")
		in.StartAt, _ = strconv.Atoi(q.Get("startAt"))
		in.MaxResults, _ = strconv.Atoi(q.Get("maxResults"))
		for _, f := range q["fields"] {
			in.Fields = append(in.Fields, wire.SplitList(f)...)
		}
	}
	var hits []*Issue
	if !wire.CallerOf(r).Anonymous {
		var ok bool
		if hits, ok = s.hits(w, in.JQL, nil); !ok {
			return
		}
	}
	limit := in.MaxResults
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 1000)
	start := max(in.StartAt, 0)
	page := hits[min(start, len(hits)):min(start+limit, len(hits))]
	fields := in.Fields
	if len(fields) == 0 {
		fields = []string{"*navigable"}
	}
	issues := make([]map[string]any, 0, len(page))
	for _, is := range page {
		issues = append(issues, s.render(r, is, fields))
	}
	wire.JSON(w, http.StatusOK, map[string]any{"startAt": start, "maxResults": limit, "total": len(hits), "issues": issues})
}

// writeNoResource is a REST resource this Jira does not have, as Jira's
// REST layer answers it.
func writeNoResource(w http.ResponseWriter, r *http.Request) {
	wire.JSON(w, http.StatusNotFound, map[string]any{"message": "null for uri: " + wire.BaseURL(r) + r.URL.Path, "status-code": http.StatusNotFound})
}
