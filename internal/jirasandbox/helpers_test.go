package jirasandbox_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ctreminiom/go-atlassian/v2/jira/sm"
	jirav2 "github.com/ctreminiom/go-atlassian/v2/jira/v2"
	jirav3 "github.com/ctreminiom/go-atlassian/v2/jira/v3"
	"github.com/ctreminiom/go-atlassian/v2/pkg/infra/models"

	"github.com/cowjacket/formjira/internal/jirasandbox"
)

const (
	testEmail = "ticketer@cowjacket.example"
	testToken = "test-api-token"
)

// start runs a sandbox requiring the test credentials unless opts says
// otherwise.
func start(t *testing.T, opts jirasandbox.Options) (*jirasandbox.Server, string) {
	t.Helper()
	if opts.Email == "" && opts.APIToken == "" {
		opts.Email, opts.APIToken = testEmail, testToken
	}
	sb := jirasandbox.New(opts)
	ts := httptest.NewServer(sb)
	t.Cleanup(ts.Close)
	return sb, ts.URL
}

func v2Client(t *testing.T, url, email, token string) *jirav2.Client {
	t.Helper()
	c, err := jirav2.New(http.DefaultClient, url)
	if err != nil {
		t.Fatalf("jira v2 client: %v", err)
	}
	c.Auth.SetBasicAuth(email, token)
	return c
}

func v3Client(t *testing.T, url string) *jirav3.Client {
	t.Helper()
	c, err := jirav3.New(http.DefaultClient, url)
	if err != nil {
		t.Fatalf("jira v3 client: %v", err)
	}
	c.Auth.SetBasicAuth(testEmail, testToken)
	return c
}

func smClient(t *testing.T, url string) *sm.Client {
	t.Helper()
	c, err := sm.New(http.DefaultClient, url)
	if err != nil {
		t.Fatalf("jsm client: %v", err)
	}
	c.Auth.SetBasicAuth(testEmail, testToken)
	return c
}

// submission is line 1 of the form fixtures (Sara Curtis).
type submission struct {
	NewUserName    string `json:"newusername"`
	SampleName     string `json:"samplename"`
	PhoneNumber    string `json:"phonenumber"`
	DepartmentName string `json:"departmentname"`
	Job            string `json:"job"`
	EmailAddress   string `json:"emailaddress"`
	CostCenter     string `json:"costcenter"`
	TelephoneLines string `json:"telephonelinesandinstallations"`
	Handsets       string `json:"handsetsandheadsets"`
	Timeframe      string `json:"timeframe"`
	DateNeededBy   string `json:"dateneededby"`
	ApproxEndDate  string `json:"approximateendingdate"`
	Comments       string `json:"Comments"`
	CreatedAt      string `json:"createdat"`
}

func sara(t *testing.T) submission {
	t.Helper()
	b, err := os.ReadFile("testdata/sample-submission-1.json")
	if err != nil {
		t.Fatal(err)
	}
	var s submission
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s submission) summary() string { return "Phone equipment request for " + s.NewUserName }

func (s submission) handsets() []string { return strings.Split(s.Handsets, "; ") }

func mustDate(t *testing.T, s string) time.Time {
	t.Helper()
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// customFields maps the submission the way the ticketer will, with
// go-atlassian's typed helpers. Comments is a textarea: plain text in v2,
// an ADF document in v3.
func (s submission) customFields(t *testing.T, v3 bool) *models.CustomFields {
	t.Helper()
	cf := &models.CustomFields{}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(cf.Text("customfield_10070", s.NewUserName))
	must(cf.Text("customfield_10071", s.SampleName))
	must(cf.Text("customfield_10072", s.PhoneNumber))
	must(cf.Select("customfield_10073", s.DepartmentName))
	must(cf.Text("customfield_10074", s.Job))
	must(cf.Text("customfield_10075", s.EmailAddress))
	must(cf.Text("customfield_10076", s.CostCenter))
	must(cf.Select("customfield_10077", s.TelephoneLines))
	must(cf.CheckBox("customfield_10078", s.handsets()))
	must(cf.RadioButton("customfield_10079", s.Timeframe))
	must(cf.Date("customfield_10080", mustDate(t, s.DateNeededBy)))
	must(cf.Date("customfield_10081", mustDate(t, s.ApproxEndDate)))
	if v3 {
		must(cf.Raw("customfield_10082", adf(s.Comments)))
	} else {
		must(cf.Text("customfield_10082", s.Comments))
	}
	must(cf.Date("customfield_10083", mustDate(t, s.CreatedAt)))
	return cf
}

func adf(text string) map[string]any {
	return map[string]any{"type": "doc", "version": 1, "content": []any{
		map[string]any{"type": "paragraph", "content": []any{map[string]any{"type": "text", "text": text}}},
	}}
}

// rawFields is the same issue as a plain field map, for validation cases
// that need values go-atlassian's typed helpers refuse to build.
func (s submission) rawFields(v3 bool) map[string]any {
	opts := func(vals []string) []any {
		out := []any{}
		for _, v := range vals {
			out = append(out, map[string]any{"value": v})
		}
		return out
	}
	f := map[string]any{
		"project":           map[string]any{"key": "CP"},
		"issuetype":         map[string]any{"id": "10003"},
		"summary":           s.summary(),
		"labels":            []any{"formjira-0123abcd"},
		"customfield_10070": s.NewUserName,
		"customfield_10071": s.SampleName,
		"customfield_10072": s.PhoneNumber,
		"customfield_10073": map[string]any{"value": s.DepartmentName},
		"customfield_10074": s.Job,
		"customfield_10075": s.EmailAddress,
		"customfield_10076": s.CostCenter,
		"customfield_10077": map[string]any{"value": s.TelephoneLines},
		"customfield_10078": opts(s.handsets()),
		"customfield_10079": map[string]any{"value": s.Timeframe},
		"customfield_10080": s.DateNeededBy,
		"customfield_10081": s.ApproxEndDate,
		"customfield_10082": s.Comments,
		"customfield_10083": s.CreatedAt,
	}
	if v3 {
		f["customfield_10082"] = adf(s.Comments)
	}
	return f
}

// rawCustomFields wraps a whole field map so go-atlassian sends it as is.
func rawCustomFields(t *testing.T, fields map[string]any) *models.CustomFields {
	t.Helper()
	cf := &models.CustomFields{}
	for _, k := range sortedKeys(fields) {
		if err := cf.Raw(k, fields[k]); err != nil {
			t.Fatalf("raw %s: %v", k, err)
		}
	}
	return cf
}

func sortedKeys(m map[string]any) []string {
	return slices.Sorted(maps.Keys(m))
}

// jiraErrors decodes Jira's ErrorCollection from a failed response.
type jiraErrors struct {
	ErrorMessages []string          `json:"errorMessages"`
	Errors        map[string]string `json:"errors"`
}

func decodeErrors(t *testing.T, res *models.ResponseScheme) jiraErrors {
	t.Helper()
	if res == nil {
		t.Fatal("no response")
	}
	var e jiraErrors
	if err := json.Unmarshal(res.Bytes.Bytes(), &e); err != nil {
		t.Fatalf("decode error body %q: %v", res.Bytes.String(), err)
	}
	return e
}

// jsmError is JSM's ErrorResponse.
type jsmError struct {
	ErrorMessage     string `json:"errorMessage"`
	I18nErrorMessage struct {
		I18nKey    string   `json:"i18nKey"`
		Parameters []string `json:"parameters"`
	} `json:"i18nErrorMessage"`
}

// decodeJSMError decodes a JSM error body, failing unless it has JSM's
// shape (errorMessage and i18nErrorMessage.i18nKey present).
func decodeJSMError(t *testing.T, body []byte) jsmError {
	t.Helper()
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatalf("decode JSM error %q: %v", body, err)
	}
	if _, ok := raw["errorMessage"]; !ok {
		t.Fatalf("not JSM's error shape: %s", body)
	}
	if _, ok := raw["errorMessages"]; ok {
		t.Fatalf("platform keys in a JSM error: %s", body)
	}
	var e jsmError
	if err := json.Unmarshal(body, &e); err != nil || e.I18nErrorMessage.I18nKey == "" || e.I18nErrorMessage.Parameters == nil {
		t.Fatalf("JSM error %s: %v", body, err)
	}
	return e
}

// smClientExperimental is a JSM client that sends X-ExperimentalApi: opt-in.
func smClientExperimental(t *testing.T, url string) *sm.Client {
	t.Helper()
	c := smClient(t, url)
	c.Auth.SetExperimentalFlag()
	return c
}

// statuses lists the logged requests' statuses.
func statuses(reqs []jirasandbox.Request) []int {
	var out []int
	for _, r := range reqs {
		out = append(out, r.Status)
	}
	return out
}
