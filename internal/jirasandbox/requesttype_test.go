package jirasandbox_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/ctreminiom/go-atlassian/v2/pkg/infra/models"

	"github.com/cowjacket/formjira/internal/jirasandbox"
)

// TestRequestTypeAndReporterOnCreate: the Customer Request Type takes the
// request type's id or "<portal key>/<request type key>"; the reporter an
// existing account's id as {"id"} or {"accountId"}; both are recorded,
// and an issue created without the field is no customer request.
func TestRequestTypeAndReporterOnCreate(t *testing.T) {
	row := sara(t)
	sb, url := start(t, jirasandbox.Options{Customers: []jirasandbox.Account{{Email: "sara.curtis@example.com", DisplayName: "Sara Curtis"}}})
	sara := sb.Customers()[1].AccountID
	c := v2Client(t, url, testEmail, testToken)
	ctx := context.Background()
	for _, tc := range []struct {
		name         string
		requestType  any // nil: field absent
		reporter     any
		wantType     string
		wantReporter string
		wantErr      map[string]string
	}{
		{"no request type", nil, nil, "", jirasandbox.BotAccountID, nil},
		{"id", "41", nil, "41", jirasandbox.BotAccountID, nil},
		{"portal key form", jirasandbox.PortalKey + "/" + jirasandbox.RequestTypeKey41, nil, "41", jirasandbox.BotAccountID, nil},
		{"reporter as id", "41", map[string]any{"id": sara}, "41", sara, nil},
		{"reporter as accountId", "41", map[string]any{"accountId": sara}, "41", sara, nil},
		{"reporter the bot", "41", map[string]any{"id": jirasandbox.BotAccountID}, "41", jirasandbox.BotAccountID, nil},
		{"unknown request type", "42", nil, "", "", map[string]string{"customfield_10010": "The request type '42' does not exist in this service project."}},
		{"wrong portal key", "xx/phone-equipment", nil, "", "", map[string]string{"customfield_10010": "The request type 'xx/phone-equipment' does not exist in this service project."}},
		{"request type as object", map[string]any{"id": "41"}, nil, "", "", map[string]string{"customfield_10010": "Operation value must be a string"}},
		{"request type as number", 41, nil, "", "", map[string]string{"customfield_10010": "Operation value must be a string"}},
		{"unknown reporter", "41", map[string]any{"id": "sara.curtis@example.com"}, "", "", map[string]string{"reporter": "Account ID sara.curtis@example.com does not exist."}},
		{"reporter without id", "41", map[string]any{"name": "sara"}, "", "", map[string]string{"reporter": "Specify a valid value for reporter"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(sb.Issues())
			f := row.rawFields(false)
			if tc.requestType != nil {
				f[jirasandbox.RequestTypeField] = tc.requestType
			}
			if tc.reporter != nil {
				f["reporter"] = tc.reporter
			}
			got, res, err := c.Issue.Create(ctx, &models.IssueSchemeV2{}, rawCustomFields(t, f))
			if tc.wantErr != nil {
				if !errors.Is(err, models.ErrBadRequest) {
					t.Fatalf("err = %v, want 400", err)
				}
				if e := decodeErrors(t, res).Errors; len(e) != len(tc.wantErr) || e[firstKey(tc.wantErr)] != tc.wantErr[firstKey(tc.wantErr)] {
					t.Errorf("errors = %v, want %v", e, tc.wantErr)
				}
				if len(sb.Issues()) != before {
					t.Error("a rejected create was recorded")
				}
				return
			}
			if err != nil {
				t.Fatalf("create: %v %s", err, res.Bytes.String())
			}
			is := sb.Issues()[len(sb.Issues())-1]
			if is.Key != got.Key || is.RequestTypeID != tc.wantType || is.Reporter != tc.wantReporter {
				t.Errorf("recorded %s request type %q reporter %q, want %q %q", is.Key, is.RequestTypeID, is.Reporter, tc.wantType, tc.wantReporter)
			}

			// Read back: the request type as JSM's object, the reporter as a user.
			_, res, err = c.Issue.Get(ctx, got.Key, []string{jirasandbox.RequestTypeField, "reporter"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			rt, perr := models.ParseRequestTypeCustomField(res.Bytes, jirasandbox.RequestTypeField)
			if tc.wantType == "" {
				if !errors.Is(perr, models.ErrNoRequestType) && !errors.Is(perr, models.ErrNoFieldInformation) && rt != nil {
					t.Errorf("an issue without request type reads back %+v (%v)", rt, perr)
				}
			} else if perr != nil || rt.RequestType.ID != "41" || rt.RequestType.ServiceDeskID != "4" || !strings.Contains(rt.Links.Web, "/servicedesk/customer/portal/4/"+got.Key) {
				t.Errorf("request type read back = %+v, %v", rt, perr)
			}
			if !strings.Contains(res.Bytes.String(), `"accountId":"`+tc.wantReporter+`"`) {
				t.Errorf("reporter not read back: %s", res.Bytes.String())
			}
		})
	}

	t.Run("one form only", func(t *testing.T) {
		for form, accepted := range map[string]string{jirasandbox.RequestTypeFormID: "41", jirasandbox.RequestTypeFormPortalKey: "cp/phone-equipment"} {
			sb.Update(func(o *jirasandbox.Options) { o.RequestTypeForm = form })
			for _, v := range []string{"41", "cp/phone-equipment"} {
				f := row.rawFields(false)
				f[jirasandbox.RequestTypeField] = v
				_, res, err := c.Issue.Create(ctx, &models.IssueSchemeV2{}, rawCustomFields(t, f))
				if (err == nil) != (v == accepted) {
					t.Errorf("form %s, value %s: %v %s", form, v, err, res.Bytes.String())
				}
				if err != nil && decodeErrors(t, res).Errors[jirasandbox.RequestTypeField] == "" {
					t.Errorf("form %s, value %s: no field error", form, v)
				}
			}
		}
		sb.Update(func(o *jirasandbox.Options) { o.RequestTypeForm = "" })
	})

	t.Run("bulk and v3", func(t *testing.T) {
		f := row.rawFields(true)
		f[jirasandbox.RequestTypeField] = "cp/phone-equipment"
		f["reporter"] = map[string]any{"accountId": sara}
		got, res, err := v3Client(t, url).Issue.Creates(ctx, []*models.IssueBulkSchemeV3{{Payload: &models.IssueScheme{}, CustomFields: rawCustomFields(t, f)}})
		if err != nil || len(got.Issues) != 1 {
			t.Fatalf("bulk: %v %s", err, res.Bytes.String())
		}
		is := sb.IssueByLabel("formjira-0123abcd")
		last := is[len(is)-1]
		if last.API != "bulk-v3" || last.RequestTypeID != "41" || last.Reporter != sara {
			t.Errorf("bulk recorded %+v", last)
		}
	})

	t.Run("sandbox page says which issues are no customer requests", func(t *testing.T) {
		page, code := httpDo(t, http.MethodGet, url+"/sandbox/", "", nil)
		s := string(page)
		if code != 200 || !strings.Contains(s, "not a customer request") || !strings.Contains(s, "41 (Phone equipment request)") ||
			!strings.Contains(s, "reporter: Sara Curtis &lt;sara.curtis@example.com&gt;") || !strings.Contains(s, sara) {
			t.Errorf("page:\n%s", s)
		}
		body, _ := httpDo(t, http.MethodGet, url+"/sandbox/issues", "", nil)
		if !strings.Contains(string(body), `"requestTypeId":"41"`) || !strings.Contains(string(body), `"reporter":"`+sara+`"`) {
			t.Errorf("/sandbox/issues = %s", body)
		}
	})
}

func firstKey(m map[string]string) string {
	for k := range m {
		return k
	}
	return ""
}
