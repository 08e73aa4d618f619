package jirasandbox_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"

	"github.com/ctreminiom/go-atlassian/v2/pkg/infra/models"

	"github.com/cowjacket/formjira/internal/jirasandbox"
)

// requestPayload is Sara's request for desk 4, raised on behalf of rob.
func requestPayload(t *testing.T, row submission, rob string) *models.CreateCustomerRequestPayloadScheme {
	t.Helper()
	p := &models.CreateCustomerRequestPayloadScheme{ServiceDeskID: "4", RequestTypeID: "41", RaiseOnBehalfOf: rob}
	for id, v := range map[string]any{
		"summary":           row.summary(),
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
	return p
}

// TestStrictRaiseOnBehalfOf: with StrictCustomers, raiseOnBehalfOf must
// be an existing accountId; an open desk takes any account and makes it a
// customer, a restricted one only its customers (400, or 403 by choice),
// unless raising adds them. The request records the account.
func TestStrictRaiseOnBehalfOf(t *testing.T) {
	row := sara(t)
	type want struct {
		status  int
		member  bool // the account is a customer of desk 4 afterwards
		i18nKey string
	}
	for _, tc := range []struct {
		name   string
		opts   jirasandbox.Options
		onDesk bool   // the account starts as a customer of desk 4
		rob    string // "" = the account's id; else sent as is
		want   want
	}{
		{"open: an e-mail is refused", jirasandbox.Options{StrictCustomers: true}, false, row.EmailAddress, want{400, false, "sd.request.create.error.raiseonbehalfof.invalid"}},
		{"open: an unknown id is refused", jirasandbox.Options{StrictCustomers: true}, false, "qm:nobody", want{400, false, "sd.request.create.error.raiseonbehalfof.invalid"}},
		{"open: any account, which becomes a customer", jirasandbox.Options{StrictCustomers: true, DeskAccess: jirasandbox.DeskOpen}, false, "", want{201, true, ""}},
		{"restricted: a customer", jirasandbox.Options{StrictCustomers: true, DeskAccess: jirasandbox.DeskRestricted}, true, "", want{201, true, ""}},
		{"restricted: not a customer", jirasandbox.Options{StrictCustomers: true, DeskAccess: jirasandbox.DeskRestricted}, false, "", want{400, false, "sd.request.create.error.raiseonbehalfof.not.customer"}},
		{"restricted: not a customer, 403", jirasandbox.Options{StrictCustomers: true, DeskAccess: jirasandbox.DeskRestricted, NotCustomerStatus: 403}, false, "", want{403, false, "sd.request.create.error.raiseonbehalfof.not.customer"}},
		{"restricted: raising adds them", jirasandbox.Options{StrictCustomers: true, DeskAccess: jirasandbox.DeskRestricted, RestrictedAddsCustomer: true}, false, "", want{201, true, ""}},
		{"restricted: the bot itself", jirasandbox.Options{StrictCustomers: true, DeskAccess: jirasandbox.DeskRestricted}, false, jirasandbox.BotAccountID, want{201, false, ""}},
		{"lenient: an e-mail is taken", jirasandbox.Options{}, false, row.EmailAddress, want{201, false, ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			var desks []string
			if tc.onDesk {
				desks = []string{"4"}
			}
			opts.Customers = []jirasandbox.Account{{Email: row.EmailAddress, DisplayName: "Sara Curtis", ServiceDesks: desks}}
			sb, url := start(t, opts)
			acct := sb.Customers()[1]
			rob := tc.rob
			if rob == "" {
				rob = acct.AccountID
			}
			got, res, err := smClient(t, url).Request.Create(context.Background(), requestPayload(t, row, rob))
			if res.Code != tc.want.status {
				t.Fatalf("status %d, want %d: %v %s", res.Code, tc.want.status, err, res.Bytes.String())
			}
			if member := sb.Customers()[1].OnDesk("4"); member != tc.want.member {
				t.Errorf("customer of desk 4 afterwards: %v, want %v", member, tc.want.member)
			}
			if tc.want.i18nKey != "" {
				e := decodeJSMError(t, res.Bytes.Bytes())
				if e.I18nErrorMessage.I18nKey != tc.want.i18nKey || !slices.Equal(e.I18nErrorMessage.Parameters, []string{"raiseOnBehalfOf", rob}) {
					t.Errorf("error %+v, want %s naming raiseOnBehalfOf", e, tc.want.i18nKey)
				}
				if len(sb.Issues()) != 0 {
					t.Error("a refused request was recorded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			is := sb.Issues()
			wantReporter := rob
			if rob == row.EmailAddress { // lenient: resolved to the account with that e-mail
				wantReporter = acct.AccountID
			}
			if len(is) != 1 || is[0].RaisedOnBehalfOf != rob || is[0].Reporter != wantReporter || is[0].RequestTypeID != "41" {
				t.Fatalf("recorded %+v, want on behalf of %s, reporter %s", is, rob, wantReporter)
			}
			if got.Reporter == nil || got.Reporter.AccountID != wantReporter {
				t.Errorf("answer's reporter %+v", got.Reporter)
			}
		})
	}
}

// TestRequestWithoutCreatePermission: DenyCreate answers a JSM request
// with 403 in JSM's shape.
func TestRequestWithoutCreatePermission(t *testing.T) {
	row := sara(t)
	sb, url := start(t, jirasandbox.Options{DenyCreate: jirasandbox.DenyCreate403})
	_, res, err := smClient(t, url).Request.Create(context.Background(), requestPayload(t, row, ""))
	if !errors.Is(err, models.ErrInvalidStatusCode) || res.Code != http.StatusForbidden {
		t.Fatalf("%v %d", err, res.Code)
	}
	decodeJSMError(t, res.Bytes.Bytes())
	if len(sb.Issues()) != 0 {
		t.Error("recorded")
	}
}
