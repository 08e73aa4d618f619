package jirasandbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ctreminiom/go-atlassian/v2/pkg/infra/models"

	"github.com/cowjacket/formjira/internal/jirasandbox"
)

func TestCreateMetaAndFields(t *testing.T) {
	_, url := start(t, jirasandbox.Options{})
	c := v2Client(t, url, testEmail, testToken)
	ctx := context.Background()

	types, _, err := c.Issue.Metadata.FetchIssueMappings(ctx, "CP", 0, 50)
	if err != nil {
		t.Fatal(err)
	}
	if id := types.Get("issueTypes.0.id").String(); id != "10003" {
		t.Errorf("issue type id = %q", id)
	}
	if self := types.Get("issueTypes.0.self").String(); !strings.HasPrefix(self, url+"/") {
		t.Errorf("self %q should point at the sandbox", self)
	}

	meta, _, err := c.Issue.Metadata.FetchFieldMappings(ctx, "CP", "10003", 0, 50)
	if err != nil {
		t.Fatal(err)
	}
	if n := meta.Get("values.#").Int(); n != 22 || meta.Get("total").Int() != 22 || !meta.Get("isLast").Bool() {
		t.Errorf("createmeta values = %d total %d", n, meta.Get("total").Int())
	}
	if !meta.Get(`values.#(fieldId=="customfield_10078").allowedValues.#(value=="SIM card only")`).Exists() {
		t.Error("createmeta lacks checkbox option 'SIM card only'")
	}
	page, _, err := c.Issue.Metadata.FetchFieldMappings(ctx, "CP", "10003", 20, 5)
	if err != nil {
		t.Fatal(err)
	}
	if page.Get("values.#").Int() != 2 || page.Get("values.1.fieldId").String() != "customfield_10010" || page.Get("isLast").Bool() != true {
		t.Errorf("paged createmeta = %s", page.Raw)
	}
	if _, res, err := c.Issue.Metadata.FetchFieldMappings(ctx, "CP", "10001", 0, 50); !errors.Is(err, models.ErrNotFound) {
		t.Errorf("unknown issue type: %v %d", err, res.Code)
	}
	if _, _, err := c.Issue.Metadata.FetchIssueMappings(ctx, "XX", 0, 50); !errors.Is(err, models.ErrNotFound) {
		t.Errorf("unknown project: %v", err)
	}

	fields, _, err := c.Issue.Field.Gets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]*models.IssueFieldScheme{}
	for _, f := range fields {
		byID[f.ID] = f
	}
	if len(fields) != 22 || byID["customfield_10010"] == nil || byID["customfield_10078"] == nil || byID["customfield_10078"].Schema.Custom != "com.atlassian.jira.plugin.system.customfieldtypes:multicheckboxes" {
		t.Errorf("fields: %d, checkbox %+v", len(fields), byID["customfield_10078"])
	}

	me, _, err := c.MySelf.Details(ctx, nil)
	if err != nil || me.EmailAddress != testEmail || me.AccountID == "" {
		t.Errorf("myself = %+v, %v", me, err)
	}
}

func TestSearchJQL(t *testing.T) {
	row := sara(t)
	const delay = 400 * time.Millisecond
	sb, url := start(t, jirasandbox.Options{SearchDelay: delay})
	c := v2Client(t, url, testEmail, testToken)
	ctx := context.Background()
	create := func(label string) string {
		f := row.rawFields(false)
		f["labels"] = []any{"formjira", label}
		got, res, err := c.Issue.Create(ctx, &models.IssueSchemeV2{}, rawCustomFields(t, f))
		if err != nil {
			t.Fatalf("create: %v %s", err, res.Bytes.String())
		}
		return got.Key
	}
	keyA := create("formjira-aaaa")
	keyB := create("formjira-bbbb")
	created := time.Now()

	search := func(jql string, fields []string) (*models.IssueSearchJQLSchemeV2, error) {
		got, _, err := c.Issue.Search.SearchJQL(ctx, jql, fields, nil, 50, "")
		return got, err
	}
	got, err := search(`project = CP AND labels = "formjira-aaaa"`, []string{"labels", "summary"})
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(created) < delay && len(got.Issues) != 0 {
		t.Fatalf("issue visible to search before SearchDelay: %+v", got.Issues)
	}
	// The issue itself is readable at once; only the index lags.
	if _, _, err := c.Issue.Get(ctx, keyA, nil, nil); err != nil {
		t.Fatalf("get before indexed: %v", err)
	}
	time.Sleep(time.Until(created.Add(delay + 50*time.Millisecond)))

	for _, tc := range []struct {
		jql  string
		want []string
	}{
		{`project = CP AND labels = "formjira-aaaa"`, []string{keyA}},
		{`labels = formjira-bbbb`, []string{keyB}},
		{`labels in ("formjira-aaaa", "formjira-bbbb")`, []string{keyB, keyA}},
		{`project = 10010 and labels IN (formjira-aaaa) ORDER BY created DESC`, []string{keyA}},
		{`labels = formjira AND labels = formjira-bbbb`, []string{keyB}},
		{`labels = "formjira-cccc"`, nil},
		{`key = ` + keyA, []string{keyA}},
	} {
		t.Run(tc.jql, func(t *testing.T) {
			got, err := search(tc.jql, []string{"labels", "summary"})
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for _, is := range got.Issues {
				keys = append(keys, is.Key)
				if is.ID == "" || is.Fields == nil || !slices.Contains(is.Fields.Labels, "formjira") || is.Fields.Summary != row.summary() {
					t.Errorf("issue %s lacks requested fields: %+v", is.Key, is.Fields)
				}
			}
			if !slices.Equal(keys, tc.want) {
				t.Errorf("keys = %v, want %v", keys, tc.want)
			}
		})
	}

	t.Run("no fields asked: ids only", func(t *testing.T) {
		got, err := search(`labels = formjira-aaaa`, nil)
		if err != nil || len(got.Issues) != 1 || got.Issues[0].ID == "" || got.Issues[0].Key != "" {
			t.Errorf("got %+v %v", got, err)
		}
	})

	t.Run("paging", func(t *testing.T) {
		first, _, err := c.Issue.Search.SearchJQL(ctx, "labels = formjira", []string{"labels"}, nil, 1, "")
		if err != nil || len(first.Issues) != 1 || first.NextPageToken == "" {
			t.Fatalf("page 1 = %+v %v", first, err)
		}
		second, _, err := c.Issue.Search.SearchJQL(ctx, "labels = formjira", []string{"labels"}, nil, 1, first.NextPageToken)
		if err != nil || len(second.Issues) != 1 || second.NextPageToken != "" || second.Issues[0].Key == first.Issues[0].Key {
			t.Fatalf("page 2 = %+v %v", second, err)
		}
	})

	for _, tc := range []struct{ jql, want string }{
		{``, "Unbounded JQL queries are not allowed here."},
		{`ORDER BY created`, "Unbounded JQL queries are not allowed here."},
		{`summary ~ phone`, "Error in the JQL Query"},
		{`labels = "unterminated`, "has not been completed"},
		{`project = XX AND labels = a`, "The value 'XX' does not exist for the field 'project'."},
		{`labels in (a, b`, "Error in the JQL Query"},
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

	t.Run("GET form", func(t *testing.T) {
		q := url + "/rest/api/3/search/jql?" + urlValues("jql", `labels = "formjira-bbbb"`, "fields", "labels,summary")
		body, code := httpDo(t, http.MethodGet, q, "", nil)
		var res struct {
			Issues []struct {
				Key    string
				Fields struct{ Labels []string }
			}
			IsLast bool
		}
		if err := json.Unmarshal(body, &res); err != nil || code != 200 || len(res.Issues) != 1 || res.Issues[0].Key != keyB || !res.IsLast {
			t.Errorf("GET search = %d %s", code, body)
		}
	})
	_ = sb
}

func urlValues(kv ...string) string {
	v := url.Values{}
	for i := 0; i < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v.Encode()
}

// httpDo sends a request with the test credentials and returns body and status.
func httpDo(t *testing.T, method, u, body string, hdr http.Header) ([]byte, int) {
	t.Helper()
	b, code, _ := httpDoHeader(t, method, u, body, hdr)
	return b, code
}

func httpDoHeader(t *testing.T, method, u, body string, hdr http.Header) ([]byte, int, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(testEmail, testToken)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header[k] = v
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b, res.StatusCode, res.Header
}

func TestRateLimit(t *testing.T) {
	sb, url := start(t, jirasandbox.Options{RatePerSecond: 1, Burst: 2})
	c := v2Client(t, url, testEmail, testToken)
	ctx := context.Background()
	for i := range 2 {
		if _, _, err := c.MySelf.Details(ctx, nil); err != nil {
			t.Fatalf("request %d within burst: %v", i, err)
		}
	}
	_, res, err := c.MySelf.Details(ctx, nil)
	if !errors.Is(err, models.ErrInvalidStatusCode) || res.Code != http.StatusTooManyRequests {
		t.Fatalf("over the limit: %v %d, want 429", err, res.Code)
	}
	retry, convErr := strconv.Atoi(res.Header.Get("Retry-After"))
	if convErr != nil || retry < 1 {
		t.Fatalf("Retry-After = %q", res.Header.Get("Retry-After"))
	}
	for _, h := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} {
		if res.Header.Get(h) == "" {
			t.Errorf("missing %s", h)
		}
	}
	// X-RateLimit-Limit "reflects the allowed requests per second".
	if res.Header.Get("X-RateLimit-Limit") != "1" || res.Header.Get("X-RateLimit-Remaining") != "0" {
		t.Errorf("limit %s remaining %s", res.Header.Get("X-RateLimit-Limit"), res.Header.Get("X-RateLimit-Remaining"))
	}
	if _, err := time.Parse(time.RFC3339, res.Header.Get("X-RateLimit-Reset")); err != nil {
		t.Errorf("X-RateLimit-Reset: %v", err)
	}

	time.Sleep(time.Duration(retry) * time.Second)
	if _, _, err := c.MySelf.Details(ctx, nil); err != nil {
		t.Fatalf("after Retry-After: %v", err)
	}

	reqs := sb.Requests()
	var statuses []int
	for _, r := range reqs {
		statuses = append(statuses, r.Status)
	}
	if !slices.Equal(statuses, []int{200, 200, 429, 200}) {
		t.Fatalf("statuses = %v", statuses)
	}
	if reqs[2].RetryAfter != time.Duration(retry)*time.Second || reqs[3].RetryAfter != 0 {
		t.Errorf("request log Retry-After: %v on the 429, %v on the next; want %ds, 0", reqs[2].RetryAfter, reqs[3].RetryAfter, retry)
	}
	if gap := reqs[3].Time.Sub(reqs[2].Time); gap < time.Duration(retry)*time.Second {
		t.Errorf("request log times: retry came %v after the 429", gap)
	}
	if reqs[0].Method != http.MethodGet || reqs[0].Path != "/rest/api/2/myself" {
		t.Errorf("request log entry %+v", reqs[0])
	}

	// Turned off mid-run: no more 429s.
	sb.SetRate(0, 0)
	for range 5 {
		if _, _, err := c.MySelf.Details(ctx, nil); err != nil {
			t.Fatalf("rate off: %v", err)
		}
	}
}

func TestAuth(t *testing.T) {
	_, url := start(t, jirasandbox.Options{Email: testEmail, APIToken: testToken, PAT: "pat-123"})
	for _, tc := range []struct {
		name   string
		header string
		want   int
	}{
		{"basic ok", basic(testEmail, testToken), 200},
		{"wrong token", basic(testEmail, "nope"), 401},
		{"wrong email", basic("someone@else", testToken), 401},
		{"no credentials", "", 401},
		{"bearer PAT", "Bearer pat-123", 200},
		{"wrong PAT", "Bearer pat-999", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, url+"/rest/api/3/myself", nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tc.want {
				t.Errorf("status = %d, want %d", res.StatusCode, tc.want)
			}
		})
	}

	t.Run("go-atlassian with wrong credentials", func(t *testing.T) {
		_, res, err := v2Client(t, url, testEmail, "wrong").MySelf.Details(context.Background(), nil)
		if !errors.Is(err, models.ErrUnauthorized) || len(decodeErrors(t, res).ErrorMessages) == 0 {
			t.Errorf("err = %v body %s", err, res.Bytes.String())
		}
	})
}

func basic(user, pass string) string {
	r, _ := http.NewRequest(http.MethodGet, "http://x", nil)
	r.SetBasicAuth(user, pass)
	return r.Header.Get("Authorization")
}

func TestSetAuthFailure(t *testing.T) {
	sb, url := start(t, jirasandbox.Options{})
	c := v2Client(t, url, testEmail, testToken)
	ctx := context.Background()
	for _, tc := range []struct {
		set, want int
	}{{403, 403}, {401, 401}, {0, 200}} {
		sb.SetAuthFailure(tc.set)
		_, res, _ := c.MySelf.Details(ctx, nil)
		if res.Code != tc.want {
			t.Errorf("SetAuthFailure(%d): status %d, want %d", tc.set, res.Code, tc.want)
		}
		if tc.want == 403 && res.Header.Get("X-Seraph-LoginReason") != "AUTHENTICATION_DENIED" {
			t.Error("403 lacks X-Seraph-LoginReason")
		}
	}
}

func TestCreatedBut500(t *testing.T) {
	row := sara(t)
	sb, url := start(t, jirasandbox.Options{CreatedBut500Rate: 1})
	c := v2Client(t, url, testEmail, testToken)
	_, res, err := c.Issue.Create(context.Background(), &models.IssueSchemeV2{}, rawCustomFields(t, row.rawFields(false)))
	if !errors.Is(err, models.ErrInternal) || res.Code != 500 {
		t.Fatalf("err = %v status %d, want 500", err, res.Code)
	}
	got := sb.IssueByLabel("formjira-0123abcd")
	if len(got) != 1 || got[0].Key != "CP-1" {
		t.Fatalf("the issue must exist despite the 500: %+v", got)
	}
	sb.SetCreatedBut500Rate(0)
	ok, _, err := c.Issue.Create(context.Background(), &models.IssueSchemeV2{}, rawCustomFields(t, row.rawFields(false)))
	if err != nil || ok.Key != "CP-2" {
		t.Fatalf("after reset: %+v %v", ok, err)
	}
}

func TestError5xx(t *testing.T) {
	row := sara(t)
	sb, url := start(t, jirasandbox.Options{Error5xxRate: 1})
	c := v2Client(t, url, testEmail, testToken)
	for range 10 {
		_, res, err := c.Issue.Create(context.Background(), &models.IssueSchemeV2{}, rawCustomFields(t, row.rawFields(false)))
		if err == nil || (res.Code != 500 && res.Code != 502 && res.Code != 503) {
			t.Fatalf("status %d err %v, want 500/502/503", res.Code, err)
		}
	}
	if n := len(sb.Issues()); n != 0 {
		t.Fatalf("an injected 5xx happens before anything: %d issues recorded", n)
	}

	// Same seed, same faults: tests can rely on the sequence.
	statuses := func() []int {
		_, url := start(t, jirasandbox.Options{Error5xxRate: 0.5, Seed: 7})
		var out []int
		for range 20 {
			_, code := httpDo(t, http.MethodGet, url+"/rest/api/2/myself", "", nil)
			out = append(out, code)
		}
		return out
	}
	a, b := statuses(), statuses()
	if !slices.Equal(a, b) || !slices.Contains(a, 200) || slices.Equal(a, slices.Repeat([]int{200}, 20)) {
		t.Errorf("seeded runs differ or are degenerate: %v vs %v", a, b)
	}
	sb.SetError5xxRate(0)
	if _, _, err := c.MySelf.Details(context.Background(), nil); err != nil {
		t.Errorf("after SetError5xxRate(0): %v", err)
	}
}

func TestLatency(t *testing.T) {
	sb, url := start(t, jirasandbox.Options{})
	c := v2Client(t, url, testEmail, testToken)
	sb.SetLatency(150 * time.Millisecond)
	began := time.Now()
	if _, _, err := c.MySelf.Details(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took < 150*time.Millisecond {
		t.Errorf("call took %v, want ≥ 150ms", took)
	}
}

// TestRequestTypeFieldsWithoutCreate: a bot that may not create requests
// is told it may not raise them on a customer's behalf either, which is
// what the ticketer probes after a 403.
func TestRequestTypeFieldsWithoutCreate(t *testing.T) {
	sb, url := start(t, jirasandbox.Options{})
	c := smClient(t, url)
	sb.SetDenyCreate(jirasandbox.DenyCreate403)
	fields, _, err := c.Request.Type.Fields(context.Background(), 4, 41)
	if err != nil || len(fields.RequestTypeFields) != 16 || fields.CanRaiseOnBehalfOf {
		t.Fatalf("request type fields, create denied: %v canRaiseOnBehalfOf=%v, %d fields", err, fields.CanRaiseOnBehalfOf, len(fields.RequestTypeFields))
	}
	sb.SetDenyCreate("")
	if fields, _, err = c.Request.Type.Fields(context.Background(), 4, 41); err != nil || !fields.CanRaiseOnBehalfOf {
		t.Fatalf("request type fields, create granted again: %v %+v", err, fields)
	}
}

func TestJSMRequestCreate(t *testing.T) {
	row := sara(t)
	sb, url := start(t, jirasandbox.Options{StartKey: 7})
	c := smClient(t, url)
	ctx := context.Background()

	fields, _, err := c.Request.Type.Fields(ctx, 4, 41)
	if err != nil || len(fields.RequestTypeFields) != 16 || !fields.CanRaiseOnBehalfOf {
		t.Fatalf("request type fields: %v %+v", err, fields)
	}

	payload := func() *models.CreateCustomerRequestPayloadScheme {
		p := &models.CreateCustomerRequestPayloadScheme{ServiceDeskID: "4", RequestTypeID: "41", RaiseOnBehalfOf: row.EmailAddress}
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(p.AddCustomField("summary", row.summary()))
		must(p.AddCustomField("customfield_10070", row.NewUserName))
		must(p.AddCustomField("customfield_10073", map[string]any{"value": row.DepartmentName}))
		must(p.AddCustomField("customfield_10075", row.EmailAddress))
		must(p.AddCustomField("customfield_10076", row.CostCenter))
		must(p.AddCustomField("customfield_10077", map[string]any{"id": "10300"}))
		must(p.MultiSelectOrCheckBoxCustomField("customfield_10078", row.handsets()))
		must(p.AddCustomField("customfield_10079", "10501")) // JSM also takes the bare option id
		must(p.DateCustomField("customfield_10080", mustDate(t, row.DateNeededBy)))
		must(p.AddCustomField("customfield_10082", row.Comments))
		return p
	}

	got, res, err := c.Request.Create(ctx, payload())
	if err != nil {
		t.Fatalf("create request: %v %s", err, res.Bytes.String())
	}
	if res.Code != 201 || got.IssueKey != "CP-7" || got.IssueID == "" || got.RequestTypeID != "41" || got.ServiceDeskID != "4" {
		t.Errorf("answer %d %+v", res.Code, got)
	}
	if got.CreatedDate == nil || got.CreatedDate.EpochMillis == 0 || time.Since(time.Time(got.CreatedDate.ISO8601)) > time.Minute {
		t.Errorf("createdDate = %+v", got.CreatedDate)
	}
	if got.Reporter == nil || got.Reporter.EmailAddress != row.EmailAddress {
		t.Errorf("reporter = %+v", got.Reporter)
	}
	is := sb.Issues()
	if len(is) != 1 || is[0].API != "jsm" || is[0].RaisedOnBehalfOf != row.EmailAddress || is[0].Summary() != row.summary() {
		t.Fatalf("recorded %+v", is)
	}

	for _, tc := range []struct {
		name    string
		mutate  func(p *models.CreateCustomerRequestPayloadScheme)
		fieldID string
		want    string
	}{
		{"bad option", func(p *models.CreateCustomerRequestPayloadScheme) {
			p.RequestFieldValues["customfield_10073"] = map[string]any{"value": "Accounting"}
		}, "customfield_10073", "Option value 'Accounting' is not valid"},
		{"missing required", func(p *models.CreateCustomerRequestPayloadScheme) {
			delete(p.RequestFieldValues, "customfield_10079")
		}, "customfield_10079", "Timeframe is required."},
		{"labels not on the request type", func(p *models.CreateCustomerRequestPayloadScheme) {
			p.RequestFieldValues["labels"] = []string{"formjira-0123abcd"}
		}, "labels", "Field 'labels' cannot be set."},
		{"bad date", func(p *models.CreateCustomerRequestPayloadScheme) {
			p.RequestFieldValues["customfield_10080"] = "28.10.2025"
		}, "customfield_10080", "Error parsing date string: 28.10.2025"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := payload()
			tc.mutate(p)
			_, res, err := c.Request.Create(ctx, p)
			if !errors.Is(err, models.ErrBadRequest) {
				t.Fatalf("err = %v", err)
			}
			var body struct {
				ErrorMessage     string `json:"errorMessage"`
				I18nErrorMessage struct {
					I18nKey    string   `json:"i18nKey"`
					Parameters []string `json:"parameters"`
				} `json:"i18nErrorMessage"`
			}
			if err := json.Unmarshal(res.Bytes.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(body.ErrorMessage, tc.fieldID+": "+tc.want) || !slices.Contains(body.I18nErrorMessage.Parameters, tc.fieldID) {
				t.Errorf("body = %s, want %q for %s", res.Bytes.String(), tc.want, tc.fieldID)
			}
		})
	}

	t.Run("unknown service desk", func(t *testing.T) {
		p := payload()
		p.ServiceDeskID = "5"
		if _, _, err := c.Request.Create(ctx, p); !errors.Is(err, models.ErrNotFound) {
			t.Errorf("err = %v, want 404", err)
		}
	})
}

func TestPageAndAdmin(t *testing.T) {
	row := sara(t)
	sb, url := start(t, jirasandbox.Options{})
	c := v2Client(t, url, testEmail, testToken)
	for range 2 {
		if _, _, err := c.Issue.Create(context.Background(), &models.IssueSchemeV2{}, rawCustomFields(t, row.rawFields(false))); err != nil {
			t.Fatal(err)
		}
	}
	for _, path := range []string{"/", "/sandbox/"} {
		page, code := httpDo(t, http.MethodGet, url+path, "", nil)
		s := string(page)
		if code != 200 || !strings.Contains(s, `http-equiv="refresh" content="2"`) ||
			!strings.Contains(s, "Department (customfield_10073)") || !strings.Contains(s, "Handset speaker phone; Mobile phone; SIM card only") ||
			!strings.Contains(s, "formjira-0123abcd") || strings.Index(s, "CP-2") > strings.Index(s, "CP-1 ") {
			t.Errorf("page %s: %d\n%s", path, code, s)
		}
	}
	body, _ := httpDo(t, http.MethodGet, url+"/sandbox/issues", "", nil)
	var list []struct {
		Key    string         `json:"key"`
		Labels []string       `json:"labels"`
		Fields map[string]any `json:"fields"`
	}
	if err := json.Unmarshal(body, &list); err != nil || len(list) != 2 || list[0].Key != "CP-1" || list[0].Fields["customfield_10076"] != row.CostCenter {
		t.Errorf("/sandbox/issues = %s (%v)", body, err)
	}

	if _, code := httpDo(t, http.MethodPost, url+"/sandbox/options", `{"fieldId":"customfield_10079","value":"Seasonal"}`, nil); code != 200 {
		t.Errorf("add option: %d", code)
	}
	meta, _ := httpDo(t, http.MethodGet, url+"/rest/api/2/issue/createmeta/CP/issuetypes/10003", "", nil)
	if !strings.Contains(string(meta), `"value":"Seasonal"`) {
		t.Error("admin option missing from createmeta")
	}
	if _, code := httpDo(t, http.MethodPost, url+"/sandbox/options", `{"fieldId":"summary","value":"x"}`, nil); code != 400 {
		t.Errorf("option on a text field: %d, want 400", code)
	}

	if _, code := httpDo(t, http.MethodPost, url+"/sandbox/config", `{"latency":"soon"}`, nil); code != 400 {
		t.Errorf("bad duration: %d, want 400", code)
	}
	cfg, code := httpDo(t, http.MethodPost, url+"/sandbox/config", `{"error5xxRate":1,"latency":"10ms"}`, nil)
	if code != 200 || !strings.Contains(string(cfg), `"latency":"10ms"`) {
		t.Errorf("config = %d %s", code, cfg)
	}
	if _, _, err := c.MySelf.Details(context.Background(), nil); err == nil {
		t.Error("error5xxRate 1 set through /sandbox/config had no effect")
	}
	httpDo(t, http.MethodPost, url+"/sandbox/config", `{"error5xxRate":0}`, nil)
	if _, code := httpDo(t, http.MethodPost, url+"/sandbox/reset", "", nil); code != 204 || len(sb.Issues()) != 0 || len(sb.Requests()) != 0 {
		t.Errorf("reset: %d, %d issues", code, len(sb.Issues()))
	}
}

func TestStateFile(t *testing.T) {
	row := sara(t)
	state := filepath.Join(t.TempDir(), "sandbox.json")
	sb, url := start(t, jirasandbox.Options{StateFile: state})
	c := v2Client(t, url, testEmail, testToken)
	if err := sb.AddOption("customfield_10073", "Treasury"); err != nil {
		t.Fatal(err)
	}
	f := row.rawFields(false)
	f["customfield_10073"] = map[string]any{"value": "Treasury"}
	if _, _, err := c.Issue.Create(context.Background(), &models.IssueSchemeV2{}, rawCustomFields(t, f)); err != nil {
		t.Fatal(err)
	}
	delete(f, "summary") // burns CP-2
	if _, _, err := c.Issue.Create(context.Background(), &models.IssueSchemeV2{}, rawCustomFields(t, f)); err == nil {
		t.Fatal("invalid create accepted")
	}

	// A restarted sandbox keeps tickets, counter and the added option.
	sb2, url2 := start(t, jirasandbox.Options{StateFile: state})
	if got := sb2.Issues(); len(got) != 1 || got[0].Key != "CP-1" || got[0].Fields["customfield_10073"] == nil {
		t.Fatalf("restored issues = %+v", got)
	}
	f["summary"] = row.summary()
	got, res, err := v2Client(t, url2, testEmail, testToken).Issue.Create(context.Background(), &models.IssueSchemeV2{}, rawCustomFields(t, f))
	if err != nil || got.Key != "CP-3" {
		t.Fatalf("create after restart = %+v %v %s", got, err, res.Bytes.String())
	}

	// A broken file is a fresh start, not a crash.
	if err := os.WriteFile(state, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if sb3, _ := start(t, jirasandbox.Options{StateFile: state}); len(sb3.Issues()) != 0 {
		t.Error("corrupt state should start empty")
	}
}
