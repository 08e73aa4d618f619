package jirasandbox_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/ctreminiom/go-atlassian/v2/pkg/infra/models"

	"github.com/cowjacket/formjira/internal/jirasandbox"
)

// TestCreateMetaShapes: createmeta's list key is Cloud's "fields" (or the
// declared "results") or DC's "values" with isLast; the issue-type list
// "issueTypes" or "values".
func TestCreateMetaShapes(t *testing.T) {
	for _, tc := range []struct {
		list, types         string
		wantList, wantTypes string
		isLast              bool
	}{
		{"", "", "values", "issueTypes", true},
		{jirasandbox.CreateMetaFields, jirasandbox.IssueTypesCloud, "fields", "issueTypes", false},
		{jirasandbox.CreateMetaResults, jirasandbox.IssueTypesValues, "results", "values", false},
		{jirasandbox.CreateMetaValues, jirasandbox.IssueTypesValues, "values", "values", true},
	} {
		t.Run(tc.wantList+"+"+tc.wantTypes, func(t *testing.T) {
			sb, url := start(t, jirasandbox.Options{})
			sb.SetCreateMeta(tc.list, tc.types, 0)
			c := v3Client(t, url)
			meta, _, err := c.Issue.Metadata.FetchFieldMappings(context.Background(), "CP", "10003", 0, 50)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"values", "fields", "results"} {
				if meta.Get(k).Exists() != (k == tc.wantList) {
					t.Errorf("key %q present: %v, want only %q (%s)", k, meta.Get(k).Exists(), tc.wantList, meta.Raw[:80])
				}
			}
			if n := meta.Get(tc.wantList + ".#").Int(); n != 22 || meta.Get("total").Int() != 22 || meta.Get("startAt").Int() != 0 || meta.Get("maxResults").Int() != 50 {
				t.Errorf("%d fields, total %d", n, meta.Get("total").Int())
			}
			if meta.Get("isLast").Exists() != tc.isLast {
				t.Errorf("isLast present %v, want %v", meta.Get("isLast").Exists(), tc.isLast)
			}
			if !meta.Get(tc.wantList + `.#(fieldId=="customfield_10010").schema.custom`).Exists() {
				t.Error("no Customer Request Type field")
			}
			types, _, err := c.Issue.Metadata.FetchIssueMappings(context.Background(), "CP", 0, 50)
			if err != nil || types.Get(tc.wantTypes+".0.id").String() != "10003" || types.Get("total").Int() != 1 {
				t.Errorf("issue types %s %v", types.Raw, err)
			}
		})
	}
}

// TestCreateMetaPaging: maxResults defaults to 50 and may not exceed 200;
// a server-side page size makes a client read several pages.
func TestCreateMetaPaging(t *testing.T) {
	sb, url := start(t, jirasandbox.Options{CreateMetaList: jirasandbox.CreateMetaFields, CreateMetaPageSize: 5})
	c := v3Client(t, url)
	ctx := context.Background()

	body, code := httpDo(t, http.MethodGet, url+"/rest/api/3/issue/createmeta/CP/issuetypes/10003?maxResults=201", "", nil)
	if want := `{"errorMessages":["Parameter 'maxResults' must not exceed the limit '200'"],"errors":{},"httpStatusCode":{"empty":false,"present":true}}`; code != 400 || string(body) != want {
		t.Errorf("maxResults 201: %d %s", code, body)
	}
	if _, res, err := c.Issue.Metadata.FetchIssueMappings(ctx, "CP", 0, 201); !errors.Is(err, models.ErrBadRequest) {
		t.Errorf("issue types maxResults 201: %v %d", err, res.Code)
	}

	var ids []string
	pages := 0
	for startAt := 0; ; pages++ {
		page, _, err := c.Issue.Metadata.FetchFieldMappings(ctx, "CP", "10003", startAt, 200)
		if err != nil {
			t.Fatal(err)
		}
		if page.Get("maxResults").Int() != 5 {
			t.Fatalf("maxResults %d, want the cap 5", page.Get("maxResults").Int())
		}
		got := page.Get("fields.#.fieldId").Array()
		for _, id := range got {
			ids = append(ids, id.String())
		}
		startAt += len(got)
		if len(got) == 0 || startAt >= int(page.Get("total").Int()) {
			break
		}
	}
	if pages != 4 || len(ids) != 22 || ids[0] != "summary" || ids[21] != "customfield_10010" || len(slices.Compact(slices.Sorted(slices.Values(ids)))) != 22 {
		t.Errorf("%d pages, %d fields %v", pages+1, len(ids), ids)
	}
	if page, _, _ := c.Issue.Metadata.FetchFieldMappings(ctx, "CP", "10003", 40, 5); page.Get("fields.#").Int() != 0 || page.Get("total").Int() != 22 {
		t.Errorf("past the end: %s", page.Raw)
	}
	sb.SetCreateMeta(jirasandbox.CreateMetaFields, "", 0)
	if page, _, _ := c.Issue.Metadata.FetchFieldMappings(ctx, "CP", "10003", 0, 0); page.Get("fields.#").Int() != 22 || !strings.Contains(page.Raw, `"maxResults":50`) {
		t.Errorf("no cap, default maxResults: %s", page.Raw[:60])
	}
}
