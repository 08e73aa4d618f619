package jirasandbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/ctreminiom/go-atlassian/v2/pkg/infra/models"

	"github.com/cowjacket/formjira/internal/jirasandbox"
)

func TestCreateValidIssue(t *testing.T) {
	row := sara(t)
	for _, tc := range []struct {
		api    string
		create func(t *testing.T, url string) (*models.IssueResponseScheme, *models.ResponseScheme, error)
	}{
		{"v2", func(t *testing.T, url string) (*models.IssueResponseScheme, *models.ResponseScheme, error) {
			payload := &models.IssueSchemeV2{Fields: &models.IssueFieldsSchemeV2{
				Project:     &models.ProjectScheme{Key: "CP"},
				IssueType:   &models.IssueTypeScheme{Name: "Service Request"},
				Summary:     row.summary(),
				Description: "Submitted through the phone equipment form.\nSecond line.",
				Labels:      []string{"formjira", "formjira-0123abcd"},
			}}
			return v2Client(t, url, testEmail, testToken).Issue.Create(context.Background(), payload, row.customFields(t, false))
		}},
		{"v3", func(t *testing.T, url string) (*models.IssueResponseScheme, *models.ResponseScheme, error) {
			payload := &models.IssueScheme{Fields: &models.IssueFieldsScheme{
				Project:   &models.ProjectScheme{ID: "10010"},
				IssueType: &models.IssueTypeScheme{ID: "10003"},
				Summary:   row.summary(),
				Description: &models.CommentNodeScheme{Version: 1, Type: "doc", Content: []*models.CommentNodeScheme{
					{Type: "paragraph", Content: []*models.CommentNodeScheme{{Type: "text", Text: "Submitted through the phone equipment form."}}},
				}},
				Labels: []string{"formjira", "formjira-0123abcd"},
			}}
			return v3Client(t, url).Issue.Create(context.Background(), payload, row.customFields(t, true))
		}},
	} {
		t.Run(tc.api, func(t *testing.T) {
			sb, url := start(t, jirasandbox.Options{StartKey: 41})
			got, res, err := tc.create(t, url)
			if err != nil {
				t.Fatalf("create: %v (%d %s)", err, res.Code, res.Bytes.String())
			}
			if res.Code != http.StatusCreated || got.Key != "CP-41" || got.ID == "" || !strings.HasPrefix(got.Self, url+"/rest/api/") {
				t.Fatalf("create answered %d %+v", res.Code, got)
			}
			issues := sb.Issues()
			if len(issues) != 1 {
				t.Fatalf("recorded %d issues, want 1", len(issues))
			}
			is := issues[0]
			if is.Key != "CP-41" || is.API != tc.api || is.Summary() != row.summary() {
				t.Errorf("recorded %s via %s summary %q", is.Key, is.API, is.Summary())
			}
			if !slices.Equal(is.Labels, []string{"formjira", "formjira-0123abcd"}) {
				t.Errorf("labels = %v", is.Labels)
			}
			handsets, _ := json.Marshal(is.Fields["customfield_10078"])
			if want := `[{"value":"Handset speaker phone"},{"value":"Mobile phone"},{"value":"SIM card only"}]`; string(handsets) != want {
				t.Errorf("handsets = %s, want %s", handsets, want)
			}
			for id, want := range map[string]any{
				"customfield_10076": "5540221908",
				"customfield_10080": "2025-10-28",
				"customfield_10081": "2025-11-22",
			} {
				if is.Fields[id] != want {
					t.Errorf("%s = %#v, want %q", id, is.Fields[id], want)
				}
			}
			if got := sb.IssueByLabel("formjira-0123abcd"); len(got) != 1 || got[0].Key != "CP-41" {
				t.Errorf("IssueByLabel = %+v", got)
			}

			// Reading back through v2 gives the fields as stored; v3 gives
			// rich text as ADF.
			back, res, err := v2Client(t, url, testEmail, testToken).Issue.Get(context.Background(), "CP-41", nil, nil)
			if err != nil {
				t.Fatalf("get: %v (%s)", err, res.Bytes.String())
			}
			if back.Fields.Summary != row.summary() || !slices.Contains(back.Fields.Labels, "formjira-0123abcd") || back.Fields.Created == nil {
				t.Errorf("get returned %+v", back.Fields)
			}
			if _, res, err := v3Client(t, url).Issue.Get(context.Background(), got.ID, nil, nil); err != nil {
				t.Errorf("v3 get: %v (%s)", err, res.Bytes.String())
			}
		})
	}
}

func TestCreateValidation(t *testing.T) {
	row := sara(t)
	long := strings.Repeat("x", 256)
	for _, tc := range []struct {
		name    string
		v3      bool
		mutate  func(f map[string]any)
		fieldID string
		want    string
	}{
		{"required select missing", false, func(f map[string]any) { delete(f, "customfield_10073") }, "customfield_10073", "Department is required."},
		{"required text empty", false, func(f map[string]any) { f["customfield_10070"] = "  " }, "customfield_10070", "New user name is required."},
		{"required date missing", false, func(f map[string]any) { delete(f, "customfield_10080") }, "customfield_10080", "Date needed by is required."},
		{"required radio missing", false, func(f map[string]any) { delete(f, "customfield_10079") }, "customfield_10079", "Timeframe is required."},
		{"summary missing", false, func(f map[string]any) { delete(f, "summary") }, "summary", "You must specify a summary of the issue."},
		{"summary too long", false, func(f map[string]any) { f["summary"] = long }, "summary", "Summary can't exceed 255 characters."},
		{"summary newline", false, func(f map[string]any) { f["summary"] = "two\nlines" }, "summary", "The summary is invalid because it contains newline characters."},
		{"select unknown value", false, func(f map[string]any) { f["customfield_10073"] = map[string]any{"value": "Accounting"} }, "customfield_10073", "Option value 'Accounting' is not valid"},
		{"select unknown id", false, func(f map[string]any) { f["customfield_10073"] = map[string]any{"id": "99999"} }, "customfield_10073", "Option id '99999' is not valid"},
		{"select plain string", false, func(f map[string]any) { f["customfield_10073"] = "Finance" }, "customfield_10073", "data was not an object"},
		{"radio unknown value", false, func(f map[string]any) { f["customfield_10079"] = map[string]any{"value": "Forever"} }, "customfield_10079", "Option value 'Forever' is not valid"},
		{"checkbox unknown value", false, func(f map[string]any) {
			f["customfield_10078"] = []any{map[string]any{"value": "Mobile phone"}, map[string]any{"value": "Fax machine"}}
		}, "customfield_10078", "Option value 'Fax machine' is not valid"},
		{"checkbox not array", false, func(f map[string]any) { f["customfield_10078"] = map[string]any{"value": "Mobile phone"} }, "customfield_10078", "data was not an array"},
		{"date wrong format", false, func(f map[string]any) { f["customfield_10080"] = "28/10/2025" }, "customfield_10080", "Error parsing date string: 28/10/2025"},
		{"date with time", false, func(f map[string]any) { f["customfield_10081"] = "2025-11-22T00:00:00Z" }, "customfield_10081", "Error parsing date string: 2025-11-22T00:00:00Z"},
		{"text too long", false, func(f map[string]any) { f["customfield_10074"] = long }, "customfield_10074", "The entered text is too long. It exceeds the allowed limit of 255 characters."},
		{"text not a string", false, func(f map[string]any) { f["customfield_10076"] = 5540221908 }, "customfield_10076", "Operation value must be a string"},
		{"textarea too long", false, func(f map[string]any) { f["customfield_10082"] = strings.Repeat("y", 32768) }, "customfield_10082", "The entered text is too long. It exceeds the allowed limit of 32,767 characters."},
		{"unknown field", false, func(f map[string]any) { f["customfield_99999"] = "x" }, "customfield_99999", "Field 'customfield_99999' cannot be set. It is not on the appropriate screen, or unknown."},
		{"field not on screen", false, func(f map[string]any) { f["priority"] = map[string]any{"name": "High"} }, "priority", "Field 'priority' cannot be set. It is not on the appropriate screen, or unknown."},
		{"label with space", false, func(f map[string]any) { f["labels"] = []any{"form jira"} }, "labels", "The label 'form jira' contains spaces which is invalid."},
		{"v2 description as ADF", false, func(f map[string]any) { f["description"] = adf("x") }, "description", "Operation value must be a string"},
		{"v3 description plain", true, func(f map[string]any) { f["description"] = "plain text" }, "description", "Operation value must be an Atlassian Document (see the Atlassian Document Format)"},
		{"v3 textarea plain", true, func(f map[string]any) { f["customfield_10082"] = "plain text" }, "customfield_10082", "Operation value must be an Atlassian Document (see the Atlassian Document Format)"},
		{"v3 ADF wrong version", true, func(f map[string]any) {
			f["customfield_10082"] = map[string]any{"type": "doc", "version": 2, "content": []any{}}
		}, "customfield_10082", "Operation value must be an Atlassian Document (see the Atlassian Document Format)"},
		{"wrong project", false, func(f map[string]any) { f["project"] = map[string]any{"key": "XX"} }, "project", "Specify a valid project ID or key"},
		{"wrong issue type", false, func(f map[string]any) { f["issuetype"] = map[string]any{"name": "Bug"} }, "issuetype", "The issue type selected is invalid."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sb, url := start(t, jirasandbox.Options{})
			fields := row.rawFields(tc.v3)
			tc.mutate(fields)
			var res *models.ResponseScheme
			var err error
			if tc.v3 {
				_, res, err = v3Client(t, url).Issue.Create(context.Background(), &models.IssueScheme{}, rawCustomFields(t, fields))
			} else {
				_, res, err = v2Client(t, url, testEmail, testToken).Issue.Create(context.Background(), &models.IssueSchemeV2{}, rawCustomFields(t, fields))
			}
			if !errors.Is(err, models.ErrBadRequest) || res.Code != http.StatusBadRequest {
				t.Fatalf("err = %v, status %d, want 400", err, res.Code)
			}
			got := decodeErrors(t, res)
			if got.Errors[tc.fieldID] != tc.want {
				t.Errorf("errors[%s] = %q, want %q (all: %v)", tc.fieldID, got.Errors[tc.fieldID], tc.want, got.Errors)
			}
			if len(got.Errors) != 1 {
				t.Errorf("want exactly one field error, got %v", got.Errors)
			}
			if got.ErrorMessages == nil {
				t.Error("errorMessages must be present (an empty array), as in Jira")
			}
			if n := len(sb.Issues()); n != 0 {
				t.Errorf("a rejected create recorded %d issues", n)
			}
		})
	}
}

func TestRejectedCreateBurnsKey(t *testing.T) {
	row := sara(t)
	sb, url := start(t, jirasandbox.Options{})
	c := v2Client(t, url, testEmail, testToken)
	create := func(mutate func(map[string]any)) (string, int) {
		f := row.rawFields(false)
		mutate(f)
		got, res, _ := c.Issue.Create(context.Background(), &models.IssueSchemeV2{}, rawCustomFields(t, f))
		if got == nil {
			return "", res.Code
		}
		return got.Key, res.Code
	}
	keep := func(map[string]any) {}
	if key, code := create(keep); key != "CP-1" || code != http.StatusCreated {
		t.Fatalf("first create = %s %d", key, code)
	}
	if _, code := create(func(f map[string]any) { delete(f, "customfield_10075") }); code != http.StatusBadRequest {
		t.Fatalf("invalid create = %d, want 400", code)
	}
	// A wrong project has no counter to advance.
	if _, code := create(func(f map[string]any) { f["project"] = map[string]any{"key": "ZZ"} }); code != http.StatusBadRequest {
		t.Fatalf("wrong project = %d, want 400", code)
	}
	if key, _ := create(keep); key != "CP-3" {
		t.Fatalf("create after a 400 = %s, want CP-3 (CP-2 burned)", key)
	}
	var keys []string
	for _, is := range sb.Issues() {
		keys = append(keys, is.Key)
	}
	if !slices.Equal(keys, []string{"CP-1", "CP-3"}) {
		t.Errorf("recorded keys %v", keys)
	}
}

func TestBulkCreate(t *testing.T) {
	row := sara(t)
	valid := func(label string) *models.IssueBulkSchemeV2 {
		f := row.rawFields(false)
		f["labels"] = []any{label}
		return &models.IssueBulkSchemeV2{Payload: &models.IssueSchemeV2{}, CustomFields: rawCustomFields(t, f)}
	}
	invalid := func() *models.IssueBulkSchemeV2 {
		f := row.rawFields(false)
		f["customfield_10073"] = map[string]any{"value": "Accounting"}
		return &models.IssueBulkSchemeV2{Payload: &models.IssueSchemeV2{}, CustomFields: rawCustomFields(t, f)}
	}

	t.Run("partial failure", func(t *testing.T) {
		sb, url := start(t, jirasandbox.Options{})
		got, res, err := v2Client(t, url, testEmail, testToken).Issue.Creates(context.Background(),
			[]*models.IssueBulkSchemeV2{valid("a"), invalid(), valid("c")})
		if err != nil || res.Code != http.StatusCreated {
			t.Fatalf("bulk = %v %d %s", err, res.Code, res.Bytes.String())
		}
		if len(got.Issues) != 2 || got.Issues[0].Key != "CP-1" || got.Issues[1].Key != "CP-3" {
			t.Errorf("issues = %+v, want CP-1 and CP-3 (CP-2 burned)", got.Issues)
		}
		if len(got.Errors) != 1 || got.Errors[0].FailedElementNumber != 1 || got.Errors[0].Status != http.StatusBadRequest {
			t.Fatalf("errors = %+v", got.Errors)
		}
		// go-atlassian's IssueBulkResponseErrorScheme has no field for
		// elementErrors.errors: the field messages are only in the raw body.
		var raw struct {
			Errors []struct {
				ElementErrors jiraErrors `json:"elementErrors"`
			} `json:"errors"`
		}
		if err := json.Unmarshal(res.Bytes.Bytes(), &raw); err != nil {
			t.Fatal(err)
		}
		if msg := raw.Errors[0].ElementErrors.Errors["customfield_10073"]; msg != "Option value 'Accounting' is not valid" {
			t.Errorf("raw element error = %q", msg)
		}
		var apis []string
		for _, is := range sb.Issues() {
			apis = append(apis, is.API)
		}
		if !slices.Equal(apis, []string{"bulk-v2", "bulk-v2"}) {
			t.Errorf("recorded APIs %v", apis)
		}
	})

	t.Run("all failed", func(t *testing.T) {
		sb, url := start(t, jirasandbox.Options{})
		_, res, err := v2Client(t, url, testEmail, testToken).Issue.Creates(context.Background(),
			[]*models.IssueBulkSchemeV2{invalid(), invalid()})
		if !errors.Is(err, models.ErrBadRequest) {
			t.Fatalf("err = %v, want ErrBadRequest", err)
		}
		var body struct {
			Issues []any `json:"issues"`
			Errors []struct {
				FailedElementNumber int `json:"failedElementNumber"`
			} `json:"errors"`
		}
		if err := json.Unmarshal(res.Bytes.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		if len(body.Issues) != 0 || len(body.Errors) != 2 || body.Errors[1].FailedElementNumber != 1 {
			t.Errorf("body = %s", res.Bytes.String())
		}
		if len(sb.Issues()) != 0 {
			t.Error("nothing should be recorded")
		}
	})

	t.Run("v3", func(t *testing.T) {
		sb, url := start(t, jirasandbox.Options{})
		f := row.rawFields(true)
		got, res, err := v3Client(t, url).Issue.Creates(context.Background(),
			[]*models.IssueBulkSchemeV3{{Payload: &models.IssueScheme{}, CustomFields: rawCustomFields(t, f)}})
		if err != nil || len(got.Issues) != 1 {
			t.Fatalf("bulk v3 = %v %s", err, res.Bytes.String())
		}
		if sb.Issues()[0].API != "bulk-v3" {
			t.Errorf("api = %s", sb.Issues()[0].API)
		}
	})

	t.Run("more than 50", func(t *testing.T) {
		_, url := start(t, jirasandbox.Options{})
		var many []*models.IssueBulkSchemeV2
		for range 51 {
			many = append(many, valid("x"))
		}
		_, res, err := v2Client(t, url, testEmail, testToken).Issue.Creates(context.Background(), many)
		if !errors.Is(err, models.ErrBadRequest) || len(decodeErrors(t, res).ErrorMessages) != 1 {
			t.Errorf("err = %v body %s", err, res.Bytes.String())
		}
	})
}

func TestAddOptionThenReplay(t *testing.T) {
	row := sara(t)
	sb, url := start(t, jirasandbox.Options{})
	c := v2Client(t, url, testEmail, testToken)
	f := row.rawFields(false)
	f["customfield_10073"] = map[string]any{"value": "Treasury"}
	if _, _, err := c.Issue.Create(context.Background(), &models.IssueSchemeV2{}, rawCustomFields(t, f)); !errors.Is(err, models.ErrBadRequest) {
		t.Fatalf("before AddOption: err = %v, want 400", err)
	}
	if err := sb.AddOption("customfield_10073", "Treasury"); err != nil {
		t.Fatal(err)
	}
	if err := sb.AddOption("customfield_10070", "x"); err == nil {
		t.Error("AddOption on a text field should fail")
	}
	meta, _, err := c.Issue.Metadata.FetchFieldMappings(context.Background(), "CP", "10003", 0, 50)
	if err != nil {
		t.Fatal(err)
	}
	if !meta.Get(`values.#(fieldId=="customfield_10073").allowedValues.#(value=="Treasury").id`).Exists() {
		t.Error("createmeta does not list the added option")
	}
	fields, _, err := smClient(t, url).Request.Type.Fields(context.Background(), 4, 41)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, rf := range fields.RequestTypeFields {
		for _, v := range rf.ValidValues {
			found = found || (rf.FieldID == "customfield_10073" && v.Label == "Treasury")
		}
	}
	if !found {
		t.Error("request type fields do not list the added option")
	}
	got, res, err := c.Issue.Create(context.Background(), &models.IssueSchemeV2{}, rawCustomFields(t, f))
	if err != nil {
		t.Fatalf("replay after AddOption: %v %s", err, res.Bytes.String())
	}
	if got.Key != "CP-2" {
		t.Errorf("key = %s, want CP-2", got.Key)
	}
}

func TestEditLabels(t *testing.T) {
	row := sara(t)
	sb, url := start(t, jirasandbox.Options{})
	c := v2Client(t, url, testEmail, testToken)
	if _, _, err := c.Issue.Create(context.Background(), &models.IssueSchemeV2{}, rawCustomFields(t, row.rawFields(false))); err != nil {
		t.Fatal(err)
	}
	ops := &models.UpdateOperations{}
	if err := ops.AddArrayOperation("labels", map[string]string{"formjira-added": "add"}); err != nil {
		t.Fatal(err)
	}
	if res, err := c.Issue.Update(context.Background(), "CP-1", false, &models.IssueSchemeV2{}, nil, ops); err != nil {
		t.Fatalf("update: %v %s", err, res.Bytes.String())
	}
	if got := sb.IssueByLabel("formjira-added"); len(got) != 1 || !slices.Contains(got[0].Labels, "formjira-0123abcd") {
		t.Errorf("after label add: %+v", got)
	}
}
