package jirasandbox

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// jiraTime is the timestamp form Jira's REST API answers with.
const jiraTime = "2006-01-02T15:04:05.000-0700"

const maxBulk = 50

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeRaw(w, status, b)
}

func writeRaw(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeErrors answers in Jira's ErrorCollection shape.
func writeErrors(w http.ResponseWriter, status int, messages []string, fieldErrs map[string]string) {
	if messages == nil {
		messages = []string{}
	}
	if fieldErrs == nil {
		fieldErrs = map[string]string{}
	}
	writeJSON(w, status, map[string]any{"errorMessages": messages, "errors": fieldErrs})
}

func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// serveFixture answers with a fixture whose links point at this sandbox.
func serveFixture(w http.ResponseWriter, r *http.Request, b []byte) {
	writeRaw(w, http.StatusOK, bytes.ReplaceAll(b, []byte(fixtureHost), []byte(baseURL(r))))
}

// decodeBody reads a JSON body, answering Jira's 400 when it is not JSON.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 10<<20)).Decode(v); err != nil {
		writeErrors(w, http.StatusBadRequest, []string{"Unexpected character in request body: " + err.Error()}, nil)
		return false
	}
	return true
}

type issueInput struct {
	Fields map[string]any `json:"fields"`
	Update map[string]any `json:"update"`
}

// createOne validates and, if valid, records one issue. It returns the
// issue or Jira's field errors.
func (s *Server) createOne(in issueInput, api string) (*Issue, map[string]string) {
	if in.Fields == nil {
		in.Fields = map[string]any{}
	}
	errs, projectOK := s.cat.validateCreate(in.Fields, strings.HasSuffix(api, "v3"))
	if !projectOK {
		return nil, errs
	}
	num := s.allocate()
	if len(errs) > 0 {
		return nil, errs
	}
	return s.record(num, in.Fields, labelsOf(in.Fields["labels"]), api, ""), nil
}

func labelsOf(v any) []string {
	var out []string
	for _, l := range asSlice(v) {
		if s, ok := l.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func issueRef(r *http.Request, is *Issue) map[string]any {
	return map[string]any{"id": is.ID, "key": is.Key, "self": baseURL(r) + apiPrefix(r) + "/issue/" + is.ID}
}

// apiPrefix is /rest/api/2 or /rest/api/3, whichever the request used.
func apiPrefix(r *http.Request) string {
	if strings.HasPrefix(r.URL.Path, "/rest/api/3/") {
		return "/rest/api/3"
	}
	return "/rest/api/2"
}

func apiVersion(r *http.Request) string {
	if strings.HasPrefix(r.URL.Path, "/rest/api/3/") {
		return "v3"
	}
	return "v2"
}

func (s *Server) handleCreate(w http.ResponseWriter, r *http.Request) {
	var in issueInput
	if !decodeBody(w, r, &in) {
		return
	}
	is, errs := s.createOne(in, apiVersion(r))
	if errs != nil {
		writeErrors(w, http.StatusBadRequest, nil, errs)
		return
	}
	if s.createdBut500() {
		s.log.Info("jira sandbox created but answered 500", "jira_key", is.Key)
		writeErrors(w, http.StatusInternalServerError, []string{"Internal server error"}, nil)
		return
	}
	writeJSON(w, http.StatusCreated, issueRef(r, is))
}

type bulkError struct {
	Status        int `json:"status"`
	ElementErrors struct {
		ErrorMessages []string          `json:"errorMessages"`
		Errors        map[string]string `json:"errors"`
	} `json:"elementErrors"`
	FailedElementNumber int `json:"failedElementNumber"`
}

// handleBulk follows Jira's bulk create: 201 when at least one issue was
// created (failures listed in "errors"), 400 with the same body when none was.
func (s *Server) handleBulk(w http.ResponseWriter, r *http.Request) {
	var in struct {
		IssueUpdates []issueInput `json:"issueUpdates"`
	}
	if !decodeBody(w, r, &in) {
		return
	}
	switch n := len(in.IssueUpdates); {
	case n == 0:
		writeErrors(w, http.StatusBadRequest, []string{"Specify at least one issue to create."}, nil)
		return
	case n > maxBulk:
		writeErrors(w, http.StatusBadRequest, []string{fmt.Sprintf("You can create at most %d issues in one request; this request has %d.", maxBulk, n)}, nil)
		return
	}
	api := "bulk-" + apiVersion(r)
	created := []map[string]any{}
	failed := []bulkError{}
	for i, u := range in.IssueUpdates {
		is, errs := s.createOne(u, api)
		if errs != nil {
			e := bulkError{Status: http.StatusBadRequest, FailedElementNumber: i}
			e.ElementErrors.ErrorMessages = []string{}
			e.ElementErrors.Errors = errs
			failed = append(failed, e)
			continue
		}
		created = append(created, issueRef(r, is))
	}
	status := http.StatusCreated
	if len(created) == 0 {
		status = http.StatusBadRequest
	} else if s.createdBut500() {
		s.log.Info("jira sandbox bulk created but answered 500", "created", len(created))
		writeErrors(w, http.StatusInternalServerError, []string{"Internal server error"}, nil)
		return
	}
	writeJSON(w, status, map[string]any{"issues": created, "errors": failed})
}

func (s *Server) findIssue(keyOrID string) *Issue {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, is := range s.issues {
		if strings.EqualFold(is.Key, keyOrID) || is.ID == keyOrID {
			return is
		}
	}
	return nil
}

func writeNoIssue(w http.ResponseWriter) {
	writeErrors(w, http.StatusNotFound, []string{"Issue does not exist or you do not have permission to see it."}, nil)
}

// issueJSON renders an issue as Jira's issue bean, restricted to fields
// (nil = all). Rich-text fields are converted between v2's plain text and
// v3's ADF as Jira would.
func (s *Server) issueJSON(r *http.Request, is *Issue, fields []string) map[string]any {
	out := issueRef(r, is)
	s.mu.Lock()
	stored := maps.Clone(is.Fields)
	s.mu.Unlock()
	stored["created"] = is.Created.Format(jiraTime)
	stored["updated"] = is.Created.Format(jiraTime)
	v3 := apiVersion(r) == "v3"
	s.cat.mu.RLock()
	for id, v := range stored {
		if f, ok := s.cat.metaByID[id]; ok && f.Kind == kindTextArea {
			switch t := v.(type) {
			case string:
				if v3 {
					stored[id] = textADF(t)
				}
			case map[string]any:
				if !v3 {
					stored[id] = adfText(t)
				}
			}
		}
	}
	s.cat.mu.RUnlock()
	if fields == nil {
		out["fields"] = stored
		return out
	}
	sel := map[string]any{}
	for _, f := range fields {
		if f == "*all" || f == "*navigable" {
			sel = stored
			break
		}
		if v, ok := stored[f]; ok {
			sel[f] = v
		}
	}
	out["fields"] = sel
	return out
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func (s *Server) handleGetIssue(w http.ResponseWriter, r *http.Request) {
	is := s.findIssue(r.PathValue("key"))
	if is == nil {
		writeNoIssue(w)
		return
	}
	writeJSON(w, http.StatusOK, s.issueJSON(r, is, splitList(r.URL.Query().Get("fields"))))
}

// handleEditIssue supports what a ticketer may need after a JSM create:
// setting fields and the labels add/remove/set operations.
func (s *Server) handleEditIssue(w http.ResponseWriter, r *http.Request) {
	is := s.findIssue(r.PathValue("key"))
	if is == nil {
		writeNoIssue(w)
		return
	}
	var in struct {
		Fields map[string]any `json:"fields"`
		Update struct {
			Labels []map[string]any `json:"labels"`
		} `json:"update"`
	}
	if !decodeBody(w, r, &in) {
		return
	}
	if errs := s.cat.validateEdit(in.Fields, apiVersion(r) == "v3"); len(errs) > 0 {
		writeErrors(w, http.StatusBadRequest, nil, errs)
		return
	}
	for _, op := range in.Update.Labels {
		for _, verb := range []string{"add", "set"} {
			v, ok := op[verb]
			if !ok {
				continue
			}
			if verb == "add" {
				v = []any{v}
			}
			if msg := checkValue(&fieldMeta{ID: "labels", Kind: kindLabels}, v, false, false); msg != "" {
				writeErrors(w, http.StatusBadRequest, nil, map[string]string{"labels": msg})
				return
			}
		}
	}
	s.mu.Lock()
	fields := maps.Clone(is.Fields)
	maps.Copy(fields, in.Fields)
	labels := slices.Clone(is.Labels)
	if l, ok := in.Fields["labels"]; ok {
		labels = labelsOf(l)
	}
	for _, op := range in.Update.Labels {
		if v, ok := op["add"].(string); ok && !slices.Contains(labels, v) {
			labels = append(labels, v)
		}
		if v, ok := op["remove"].(string); ok {
			labels = slices.DeleteFunc(labels, func(l string) bool { return l == v })
		}
		if v, ok := op["set"]; ok {
			labels = labelsOf(v)
		}
	}
	if len(labels) > 0 || is.Fields["labels"] != nil {
		fields["labels"] = toAnySlice(labels)
	}
	is.Fields, is.Labels = fields, labels
	s.saveState()
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func toAnySlice(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func (s *Server) projectOK(p string) bool {
	return strings.EqualFold(p, s.cat.projectKey) || p == s.cat.projectID
}

func (s *Server) handleIssueTypes(w http.ResponseWriter, r *http.Request) {
	if !s.projectOK(r.PathValue("project")) {
		writeErrors(w, http.StatusNotFound, []string{"No project could be found with key '" + r.PathValue("project") + "'."}, nil)
		return
	}
	serveFixture(w, r, s.cat.issueTypesRaw)
}

func (s *Server) handleCreateMeta(w http.ResponseWriter, r *http.Request) {
	if !s.projectOK(r.PathValue("project")) {
		writeErrors(w, http.StatusNotFound, []string{"No project could be found with key '" + r.PathValue("project") + "'."}, nil)
		return
	}
	if r.PathValue("id") != s.cat.issueTypeID {
		writeErrors(w, http.StatusNotFound, []string{"Issue type with id '" + r.PathValue("id") + "' does not exist or is not valid for this project."}, nil)
		return
	}
	q := r.URL.Query()
	startAt, _ := strconv.Atoi(q.Get("startAt"))
	maxResults, err := strconv.Atoi(q.Get("maxResults"))
	if err != nil || maxResults <= 0 {
		maxResults = 50
	}
	b, err := s.cat.createMetaPage(startAt, min(maxResults, 200))
	if err != nil {
		writeErrors(w, http.StatusInternalServerError, []string{err.Error()}, nil)
		return
	}
	serveFixture(w, r, b)
}

func (s *Server) handleFields(w http.ResponseWriter, r *http.Request) {
	serveFixture(w, r, s.cat.fieldsRaw)
}

func (s *Server) handleMyself(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	email := s.opts.Email
	s.mu.Unlock()
	if email == "" {
		email = "sandbox@example.com"
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"self":         baseURL(r) + apiPrefix(r) + "/user?accountId=5b10ac8d82e05b22cc7d4ef5",
		"accountId":    "5b10ac8d82e05b22cc7d4ef5",
		"accountType":  "atlassian",
		"emailAddress": email,
		"displayName":  "Jira Sandbox",
		"active":       true,
		"timeZone":     "UTC",
		"locale":       "en_US",
	})
}

// handleSearch is the enhanced search (/search/jql) that replaced /search:
// token paging, no total, and only issue ids unless fields are asked for.
// Issues become visible SearchDelay after creation.
func (s *Server) handleSearch(w http.ResponseWriter, r *http.Request) {
	var in struct {
		JQL           string   `json:"jql"`
		MaxResults    int      `json:"maxResults"`
		Fields        []string `json:"fields"`
		NextPageToken string   `json:"nextPageToken"`
	}
	if r.Method == http.MethodPost {
		if !decodeBody(w, r, &in) {
			return
		}
	} else {
		q := r.URL.Query()
		in.JQL, in.NextPageToken = q.Get("jql"), q.Get("nextPageToken")
		in.MaxResults, _ = strconv.Atoi(q.Get("maxResults"))
		for _, f := range q["fields"] {
			in.Fields = append(in.Fields, splitList(f)...)
		}
	}
	query, err := parseJQL(in.JQL)
	if err != nil {
		writeErrors(w, http.StatusBadRequest, []string{err.Error()}, nil)
		return
	}
	for _, set := range query.projects {
		for _, p := range set {
			if !s.projectOK(p) {
				writeErrors(w, http.StatusBadRequest, []string{fmt.Sprintf("The value '%s' does not exist for the field 'project'.", p)}, nil)
				return
			}
		}
	}
	offset := 0
	if in.NextPageToken != "" {
		b, decErr := base64.RawURLEncoding.DecodeString(in.NextPageToken)
		var err error
		if offset, err = strconv.Atoi(string(b)); decErr != nil || err != nil || offset < 0 {
			writeErrors(w, http.StatusBadRequest, []string{"The provided next page token is invalid or expired."}, nil)
			return
		}
	}
	limit := in.MaxResults
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 5000)

	s.mu.Lock()
	visibleBefore := time.Now().Add(-s.opts.SearchDelay)
	var hits []*Issue
	for _, is := range slices.Backward(s.issues) { // newest first
		if !is.Created.After(visibleBefore) && query.matches(is, s.cat.projectKey, s.cat.projectID) {
			hits = append(hits, is)
		}
	}
	s.mu.Unlock()

	page := hits[min(offset, len(hits)):min(offset+limit, len(hits))]
	issues := make([]map[string]any, 0, len(page))
	for _, is := range page {
		if len(in.Fields) == 0 {
			issues = append(issues, map[string]any{"id": is.ID})
			continue
		}
		issues = append(issues, s.issueJSON(r, is, in.Fields))
	}
	resp := map[string]any{"issues": issues, "isLast": offset+limit >= len(hits)}
	if offset+limit < len(hits) {
		resp["nextPageToken"] = base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(offset + limit)))
	}
	writeJSON(w, http.StatusOK, resp)
}
