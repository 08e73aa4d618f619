package jirasandbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ctreminiom/go-atlassian/v2/pkg/infra/models"

	"github.com/cowjacket/formjira/internal/jirasandbox"
)

// searchKeys runs a raw POST /search/jql (go-atlassian cannot send
// reconcileIssues) and returns the keys found.
func searchKeys(t *testing.T, url string, body map[string]any) ([]string, int, []byte) {
	t.Helper()
	b, _ := json.Marshal(body)
	raw, code := httpDo(t, http.MethodPost, url+"/rest/api/3/search/jql", string(b), nil)
	var res struct {
		Issues []struct{ Key string } `json:"issues"`
	}
	_ = json.Unmarshal(raw, &res)
	var keys []string
	for _, is := range res.Issues {
		keys = append(keys, is.Key)
	}
	return keys, code, raw
}

// TestSearchLagAndConsistentReads: a 150 s search lag hides new issues
// from label and text JQL alike, while GET issue, bulkfetch and
// reconcileIssues see them at once; shortening the lag at runtime makes
// them searchable.
func TestSearchLagAndConsistentReads(t *testing.T) {
	row := sara(t)
	sb, url := start(t, jirasandbox.Options{SearchDelay: 150 * time.Second})
	c := v3Client(t, url)
	ctx := context.Background()
	var keys, ids []string
	for _, label := range []string{"hash-a", "hash-b", "hash-c"} {
		f := row.rawFields(true)
		f["labels"] = []any{"formjira", label}
		got, res, err := c.Issue.Create(ctx, &models.IssueScheme{}, rawCustomFields(t, f))
		if err != nil {
			t.Fatalf("create: %v %s", err, res.Bytes.String())
		}
		keys, ids = append(keys, got.Key), append(ids, got.ID)
	}
	jsm, res, err := smClient(t, url).Request.Create(ctx, func() *models.CreateCustomerRequestPayloadScheme {
		p := requestPayload(t, row, "")
		_ = p.AddCustomField("description", "Record hash: 0f0f0f0f0f0f")
		return p
	}())
	if err != nil {
		t.Fatalf("jsm create: %v %s", err, res.Bytes.String())
	}

	for _, jql := range []string{`labels = hash-a`, `project = CP AND labels = formjira`, `text ~ "0f0f0f0f0f0f"`, `key = ` + keys[0]} {
		if got, code, raw := searchKeys(t, url, map[string]any{"jql": jql, "fields": []string{"labels"}}); code != 200 || len(got) != 0 {
			t.Errorf("%s within the lag: %d %s", jql, code, raw)
		}
	}
	if _, _, err := c.Issue.Get(ctx, keys[1], nil, nil); err != nil {
		t.Errorf("GET issue within the lag: %v", err)
	}

	t.Run("bulkfetch", func(t *testing.T) {
		got, res, err := c.Issue.Search.BulkFetch(ctx, []string{keys[2], ids[0], "CP-999", "99999", strings.ToLower(keys[1]), keys[2]}, []string{"labels"})
		if err != nil {
			t.Fatalf("%v %s", err, res.Bytes.String())
		}
		var gotKeys []string
		for _, is := range got.Issues {
			gotKeys = append(gotKeys, is.Key)
			if is.Fields == nil || len(is.Fields.Labels) != 2 || is.Fields.Summary != "" {
				t.Errorf("%s: only labels asked for, got %+v", is.Key, is.Fields)
			}
		}
		if !slices.Equal(gotKeys, keys) {
			t.Errorf("bulkfetch = %v, want %v: ascending id, unknown ones absent, each once", gotKeys, keys)
		}
		if !strings.Contains(res.Bytes.String(), `"issueErrors":[]`) {
			t.Errorf("no issueErrors: %s", res.Bytes.String())
		}
		many := make([]string, 101)
		for i := range many {
			many[i] = fmt.Sprint(10001 + i)
		}
		if _, res, err := c.Issue.Search.BulkFetch(ctx, many, nil); !errors.Is(err, models.ErrBadRequest) {
			t.Errorf("101 ids: %v %d", err, res.Code)
		}
		if _, res, err := c.Issue.Search.BulkFetch(ctx, many[:100], nil); err != nil {
			t.Errorf("100 ids: %v %d", err, res.Code)
		}
		if _, code := httpDo(t, http.MethodPost, url+"/rest/api/3/issue/bulkfetch", `{"issueIdsOrKeys":[]}`, nil); code != 400 {
			t.Errorf("no ids: %d", code)
		}
	})

	t.Run("reconcileIssues", func(t *testing.T) {
		id := func(s string) int64 {
			var n int64
			fmt.Sscan(s, &n)
			return n
		}
		for _, tc := range []struct {
			jql       string
			reconcile []int64
			want      []string
		}{
			{`labels = formjira`, []int64{id(ids[0]), id(ids[2])}, []string{keys[2], keys[0]}},
			{`labels = hash-a`, []int64{id(ids[1])}, nil}, // listed but no match
			{`labels = hash-b`, []int64{id(ids[1])}, []string{keys[1]}},
			{`text ~ "0f0f0f0f0f0f"`, []int64{id(jsm.IssueID)}, []string{jsm.IssueKey}},
			{`labels = formjira`, nil, nil},
		} {
			got, code, raw := searchKeys(t, url, map[string]any{"jql": tc.jql, "fields": []string{"labels"}, "reconcileIssues": tc.reconcile})
			if code != 200 || !slices.Equal(got, tc.want) {
				t.Errorf("%s reconciling %v: %d %v, want %v (%s)", tc.jql, tc.reconcile, code, got, tc.want, raw)
			}
		}
		q := url + "/rest/api/2/search/jql?" + urlValues("jql", "labels = hash-c", "fields", "labels", "reconcileIssues", ids[2])
		if raw, code := httpDo(t, http.MethodGet, q, "", nil); code != 200 || !strings.Contains(string(raw), keys[2]) {
			t.Errorf("GET with reconcileIssues: %d %s", code, raw)
		}
		fifty := make([]int64, 51)
		if _, code, _ := searchKeys(t, url, map[string]any{"jql": "labels = a", "reconcileIssues": fifty}); code != 400 {
			t.Errorf("51 reconcile ids: %d", code)
		}
		if _, code, _ := searchKeys(t, url, map[string]any{"jql": "labels = a", "reconcileIssues": []string{keys[0]}}); code != 400 {
			t.Errorf("keys instead of ids: %d", code)
		}
	})

	// The lag ends when the test says so.
	sb.SetSearchDelay(100 * time.Millisecond)
	time.Sleep(150 * time.Millisecond)
	for jql, want := range map[string][]string{
		`labels = hash-a`:                  {keys[0]},
		`text ~ "0f0f0f0f0f0f"`:            {jsm.IssueKey},
		`labels = formjira`:                {keys[2], keys[1], keys[0]},
		`text ~ "` + row.NewUserName + `"`: {jsm.IssueKey, keys[2], keys[1], keys[0]},
	} {
		if got, _, raw := searchKeys(t, url, map[string]any{"jql": jql, "fields": []string{"summary"}}); !slices.Equal(got, want) {
			t.Errorf("%s after the lag: %v, want %v (%s)", jql, got, want, raw)
		}
	}
}
