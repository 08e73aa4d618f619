package jirasandbox_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ctreminiom/go-atlassian/v2/pkg/infra/models"

	"github.com/cowjacket/formjira/internal/jirasandbox"
)

// TestSearchText: "text ~" and "description ~" find a JSM request by a
// word of its description (the record hash, which a request type without
// a labels field can carry only there), once SearchDelay has passed, and
// through go-atlassian's search like the label clauses.
func TestSearchText(t *testing.T) {
	row := sara(t)
	const delay = 300 * time.Millisecond
	const hashA = "9f2c4e8a1b3d5f7092c4e6a8b0d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4b6d8"
	const hashB = "0000aaaa1111bbbb2222cccc3333dddd4444eeee5555ffff6666000077778888"
	sb, url := start(t, jirasandbox.Options{SearchDelay: delay})
	desk := smClient(t, url)
	c := v2Client(t, url, testEmail, testToken)
	ctx := context.Background()
	create := func(hash string) string {
		t.Helper()
		p := &models.CreateCustomerRequestPayloadScheme{ServiceDeskID: "4", RequestTypeID: "41", RaiseOnBehalfOf: row.EmailAddress}
		for id, v := range map[string]any{
			"summary":           row.summary(),
			"description":       "Phone equipment request from the web form.\n\nRecord hash: " + hash,
			"customfield_10070": row.NewUserName,
			"customfield_10073": map[string]any{"value": row.DepartmentName},
			"customfield_10075": row.EmailAddress,
			"customfield_10076": row.CostCenter,
			"customfield_10079": "10501",
			"customfield_10080": row.DateNeededBy,
		} {
			if err := p.AddCustomField(id, v); err != nil {
				t.Fatal(err)
			}
		}
		got, res, err := desk.Request.Create(ctx, p)
		if err != nil {
			t.Fatalf("create request: %v %s", err, res.Bytes.String())
		}
		return got.IssueKey
	}
	keyA := create(hashA)
	keyB := create(hashB)
	created := time.Now()

	search := func(jql string) ([]string, error) {
		got, _, err := c.Issue.Search.SearchJQL(ctx, jql, []string{"summary", "description"}, nil, 50, "")
		if err != nil {
			return nil, err
		}
		var keys []string
		for _, is := range got.Issues {
			keys = append(keys, is.Key)
			if !strings.Contains(is.Fields.Description, "Record hash: ") {
				t.Errorf("issue %s: description not returned: %q", is.Key, is.Fields.Description)
			}
		}
		return keys, nil
	}
	phraseA := `project = CP AND text ~ "\"` + hashA + `\""`
	keys, err := search(phraseA)
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(created) < delay && len(keys) != 0 {
		t.Fatalf("request visible to text search before SearchDelay: %v", keys)
	}
	time.Sleep(time.Until(created.Add(delay + 50*time.Millisecond)))

	for _, tc := range []struct {
		jql  string
		want []string
	}{
		{phraseA, []string{keyA}},
		{`project = CP AND description ~ "\"` + hashB + `\""`, []string{keyB}},
		{`text ~ "` + strings.ToUpper(hashA) + `"`, []string{keyA}}, // words are case-insensitive
		{`text ~ "\"record hash ` + hashB + `\""`, []string{keyB}},  // a phrase across words
		{`text ~ "\"hash record\""`, nil},                           // a phrase keeps its order
		{`text ~ "record hash"`, []string{keyB, keyA}},              // all words, anywhere
		{`text ~ "` + hashA[:32] + `"`, nil},                        // a word, not a substring
		{`text ~ "` + row.NewUserName + `"`, []string{keyB, keyA}},  // custom text fields too
		{`description ~ "` + row.NewUserName + `"`, nil},            // but description only here
		{`project = CP AND text ~ "` + hashA + `" AND labels = x`, nil},
	} {
		t.Run(tc.jql, func(t *testing.T) {
			keys, err := search(tc.jql)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(keys, tc.want) {
				t.Errorf("keys = %v, want %v", keys, tc.want)
			}
		})
	}
	for _, tc := range []struct{ jql, want string }{
		{`text = abc`, "The operator '=' is not supported by the 'text' field."},
		{`text ~ "\"\""`, "is not valid"},
		{`text ~`, "Expecting either a value"},
	} {
		t.Run("bad "+tc.jql, func(t *testing.T) {
			_, res, err := c.Issue.Search.SearchJQL(ctx, tc.jql, nil, nil, 50, "")
			if !errors.Is(err, models.ErrBadRequest) {
				t.Fatalf("err = %v", err)
			}
			if msgs := decodeErrors(t, res).ErrorMessages; len(msgs) != 1 || !strings.Contains(msgs[0], tc.want) {
				t.Errorf("errorMessages = %v, want %q", msgs, tc.want)
			}
		})
	}
	_ = sb
}
