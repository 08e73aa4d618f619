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

	"github.com/ctreminiom/go-atlassian/v2/pkg/infra/models"

	"github.com/cowjacket/formjira/internal/jirasandbox"
)

// bulkAnswer is a bulk create's body: CreatedIssues, or (a 500, a 400
// about the request as a whole) an ErrorCollection, whose "errors" is an
// object where CreatedIssues has an array.
type bulkAnswer struct {
	Issues []struct{ ID, Key string } `json:"issues"`
	Errors []struct {
		Status              int        `json:"status"`
		FailedElementNumber int        `json:"failedElementNumber"`
		ElementErrors       jiraErrors `json:"elementErrors"`
	} `json:"-"`
	RawErrors     json.RawMessage `json:"errors"`
	ErrorMessages []string        `json:"errorMessages"`
}

// bulkBody builds an issue/bulk body of n issues labelled l0…l(n-1); the
// indices in bad get an invalid department.
func bulkBody(t *testing.T, row submission, n int, bad ...int) string {
	t.Helper()
	var updates []map[string]any
	for i := range n {
		f := row.rawFields(false)
		f["labels"] = []any{fmt.Sprintf("l%d", i)}
		if slices.Contains(bad, i) {
			f["customfield_10073"] = map[string]any{"value": "Accounting"}
		}
		updates = append(updates, map[string]any{"fields": f})
	}
	b, err := json.Marshal(map[string]any{"issueUpdates": updates})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func postBulk(t *testing.T, url, body string) (bulkAnswer, int, []byte) {
	t.Helper()
	b, code := httpDo(t, http.MethodPost, url+"/rest/api/2/issue/bulk", body, nil)
	var a bulkAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("bulk answer %s: %v", b, err)
	}
	if strings.HasPrefix(string(a.RawErrors), "[") {
		if err := json.Unmarshal(a.RawErrors, &a.Errors); err != nil {
			t.Fatalf("bulk errors %s: %v", a.RawErrors, err)
		}
	}
	return a, code, b
}

// TestBulkShuffled: with ShuffleBulk the created issues come back in an
// order unrelated to the request's (JRACLOUD-81005), all of them;
// failedElementNumber still names the request index.
func TestBulkShuffled(t *testing.T) {
	row := sara(t)
	sb, url := start(t, jirasandbox.Options{ShuffleBulk: true, Seed: 3})
	a, code, raw := postBulk(t, url, bulkBody(t, row, 20, 4, 11))
	if code != http.StatusCreated || len(a.Issues) != 18 {
		t.Fatalf("%d %s", code, raw)
	}
	var answered, recorded []string
	for _, is := range a.Issues {
		answered = append(answered, is.Key)
	}
	for _, is := range sb.Issues() {
		recorded = append(recorded, is.Key) // creation order: the request's
	}
	if slices.Equal(answered, recorded) {
		t.Errorf("issues[] in request order %v: not shuffled", answered)
	}
	if !slices.Equal(slices.Sorted(slices.Values(answered)), slices.Sorted(slices.Values(recorded))) {
		t.Errorf("answered %v, created %v", answered, recorded)
	}
	var failed []int
	for _, e := range a.Errors {
		failed = append(failed, e.FailedElementNumber)
		if e.ElementErrors.Errors["customfield_10073"] == "" {
			t.Errorf("element error %+v", e)
		}
	}
	if !slices.Equal(failed, []int{4, 11}) {
		t.Errorf("failedElementNumber %v, want [4 11]", failed)
	}
	// Each label is still on the issue created from its element.
	for i, is := range sb.Issues() {
		want := i
		if i >= 4 {
			want++
		}
		if i >= 10 {
			want++
		}
		if !slices.Equal(is.Labels, []string{fmt.Sprintf("l%d", want)}) {
			t.Errorf("%s carries %v, want l%d", is.Key, is.Labels, want)
		}
	}

	sb.SetShuffleBulk(false)
	a, _, _ = postBulk(t, url, bulkBody(t, row, 10))
	for i := 1; i < len(a.Issues); i++ {
		if a.Issues[i-1].ID > a.Issues[i].ID {
			t.Fatalf("unshuffled answer out of order: %+v", a.Issues)
		}
	}
}

// TestBulkCreatedBut500: the valid elements are created, the answer is 500.
func TestBulkCreatedBut500(t *testing.T) {
	row := sara(t)
	sb, url := start(t, jirasandbox.Options{CreatedBut500Rate: 1})
	_, code, raw := postBulk(t, url, bulkBody(t, row, 5, 2))
	if code != http.StatusInternalServerError {
		t.Fatalf("%d %s", code, raw)
	}
	if n := len(sb.Issues()); n != 4 {
		t.Errorf("%d issues created behind the 500, want the 4 valid ones", n)
	}
	// All invalid: nothing created, so the 400 is told as it is.
	if _, code, raw := postBulk(t, url, bulkBody(t, row, 2, 0, 1)); code != http.StatusBadRequest {
		t.Errorf("all invalid: %d %s", code, raw)
	}
}

// TestBulkRejectedAsAWhole: a 400 about the request with no element
// errors, nothing created and no key used, for the next N bulk creates or
// a fraction of them.
func TestBulkRejectedAsAWhole(t *testing.T) {
	row := sara(t)
	sb, url := start(t, jirasandbox.Options{BulkReject400Count: 2})
	for i := range 2 {
		a, code, raw := postBulk(t, url, bulkBody(t, row, 3))
		if code != http.StatusBadRequest || len(a.ErrorMessages) != 1 || a.Issues != nil || string(a.RawErrors) != "{}" {
			t.Fatalf("bulk %d: %d %s", i, code, raw)
		}
	}
	if len(sb.Issues()) != 0 {
		t.Fatal("a rejected bulk created issues")
	}
	// go-atlassian sees ErrBadRequest and no result: what a client must
	// answer by creating one by one.
	f := row.rawFields(false)
	got, res, err := v2Client(t, url, testEmail, testToken).Issue.Creates(context.Background(),
		[]*models.IssueBulkSchemeV2{{Payload: &models.IssueSchemeV2{}, CustomFields: rawCustomFields(t, f)}})
	if err != nil || len(got.Issues) != 1 || got.Issues[0].Key != "CP-1" {
		t.Fatalf("third bulk (the count is used up): %v %s", err, res.Bytes.String())
	}
	if _, _, err := v2Client(t, url, testEmail, testToken).Issue.Create(context.Background(), &models.IssueSchemeV2{}, rawCustomFields(t, f)); err != nil {
		t.Errorf("single creates are not affected: %v", err)
	}

	sb.SetBulkReject400(0, 1)
	if _, _, err := v2Client(t, url, testEmail, testToken).Issue.Creates(context.Background(),
		[]*models.IssueBulkSchemeV2{{Payload: &models.IssueSchemeV2{}, CustomFields: rawCustomFields(t, f)}}); !errors.Is(err, models.ErrBadRequest) {
		t.Errorf("rate 1: %v", err)
	}
	sb.SetBulkReject400(0, 0)
	if _, code, raw := postBulk(t, url, bulkBody(t, row, 1)); code != http.StatusCreated {
		t.Errorf("turned off: %d %s", code, raw)
	}
}
