package jirasandbox

import (
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/cowjacket/formjira/internal/jirasandbox/wire"
)

// sandboxConfig is the admin view of the live settings (GET and POST
// /sandbox/config): each field is an Options field of the same name;
// absent fields are left as they are; durations are Go duration strings
// ("250ms", "150s"); rateLimitResetLayout also takes "seconds" or
// "minutes".
type sandboxConfig struct {
	RatePerSecond        *float64          `json:"ratePerSecond,omitempty"`
	Burst                *int              `json:"burst,omitempty"`
	EndpointRates        *map[string]Limit `json:"endpointRates,omitempty"`
	TenantRatePerSecond  *float64          `json:"tenantRatePerSecond,omitempty"`
	TenantBurst          *int              `json:"tenantBurst,omitempty"`
	RateLimitHeaders     *string           `json:"rateLimitHeaders,omitempty"`
	RateLimitResetLayout *string           `json:"rateLimitResetLayout,omitempty"`
	RateLimitReason      *string           `json:"rateLimitReason,omitempty"`

	Error5xxRate       *float64 `json:"error5xxRate,omitempty"`
	CreatedBut500Rate  *float64 `json:"createdBut500Rate,omitempty"`
	Latency            *string  `json:"latency,omitempty"`
	SearchDelay        *string  `json:"searchDelay,omitempty"`
	ShuffleBulk        *bool    `json:"shuffleBulk,omitempty"`
	BulkReject400Count *int     `json:"bulkReject400Count,omitempty"`
	BulkReject400Rate  *float64 `json:"bulkReject400Rate,omitempty"`
	Outage             *string  `json:"outage,omitempty"`
	OutageRetryAfter   *string  `json:"outageRetryAfter,omitempty"`

	RequestTypeForm        *string `json:"requestTypeForm,omitempty"`
	StrictCustomers        *bool   `json:"strictCustomers,omitempty"`
	DeskAccess             *string `json:"deskAccess,omitempty"`
	RestrictedAddsCustomer *bool   `json:"restrictedAddsCustomer,omitempty"`
	NotCustomerStatus      *int    `json:"notCustomerStatus,omitempty"`
	ForbidCreateCustomer   *bool   `json:"forbidCreateCustomer,omitempty"`
	ForbidAddCustomer      *bool   `json:"forbidAddCustomer,omitempty"`
	HideEmails             *bool   `json:"hideEmails,omitempty"`
	HideCustomerEmails     *bool   `json:"hideCustomerEmails,omitempty"`
	CustomerPageMax        *int    `json:"customerPageMax,omitempty"`

	DenyCreate         *string `json:"denyCreate,omitempty"`
	AnonymousFallback  *bool   `json:"anonymousFallback,omitempty"`
	AnonymousMyself401 *bool   `json:"anonymousMyself401,omitempty"`
	AuthFailure        *int    `json:"authFailure,omitempty"`

	CreateMetaList     *string `json:"createMetaList,omitempty"`
	IssueTypesList     *string `json:"issueTypesList,omitempty"`
	CreateMetaPageSize *int    `json:"createMetaPageSize,omitempty"`
}

func (s *Server) handleConfig(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		var in sandboxConfig
		if !wire.Decode(w, r, &in) {
			return
		}
		if err := s.applyConfig(in); err != nil {
			wire.Errors(w, http.StatusBadRequest, []string{err.Error()}, nil)
			return
		}
	}
	o, auth := s.options()
	d := func(d time.Duration) *string { v := d.String(); return &v }
	str := func(v string) *string { return &v }
	rates := o.EndpointRates
	if rates == nil {
		rates = map[string]Limit{}
	}
	wire.JSON(w, http.StatusOK, sandboxConfig{
		RatePerSecond: &o.RatePerSecond, Burst: &o.Burst, EndpointRates: &rates,
		TenantRatePerSecond: &o.TenantRatePerSecond, TenantBurst: &o.TenantBurst,
		RateLimitHeaders: str(string(o.RateLimitHeaders)), RateLimitResetLayout: &o.RateLimitResetLayout, RateLimitReason: &o.RateLimitReason,
		Error5xxRate: &o.Error5xxRate, CreatedBut500Rate: &o.CreatedBut500Rate, Latency: d(o.Latency), SearchDelay: d(o.SearchDelay),
		ShuffleBulk: &o.ShuffleBulk, BulkReject400Count: &o.BulkReject400Count, BulkReject400Rate: &o.BulkReject400Rate,
		Outage: str(string(o.Outage)), OutageRetryAfter: d(o.OutageRetryAfter),
		RequestTypeForm: &o.RequestTypeForm, StrictCustomers: &o.StrictCustomers, DeskAccess: &o.DeskAccess, RestrictedAddsCustomer: &o.RestrictedAddsCustomer,
		NotCustomerStatus: &o.NotCustomerStatus, ForbidCreateCustomer: &o.ForbidCreateCustomer, ForbidAddCustomer: &o.ForbidAddCustomer,
		HideEmails: &o.HideEmails, HideCustomerEmails: &o.HideCustomerEmails, CustomerPageMax: &o.CustomerPageMax,
		DenyCreate: &o.DenyCreate, AnonymousFallback: &o.AnonymousFallback, AnonymousMyself401: &o.AnonymousMyself401, AuthFailure: &auth,
		CreateMetaList: &o.CreateMetaList, IssueTypesList: &o.IssueTypesList, CreateMetaPageSize: &o.CreateMetaPageSize,
	})
}

// set copies *src to *dst when src is given.
func set[T any](dst *T, src *T) {
	if src != nil {
		*dst = *src
	}
}

// applyConfig validates everything first, so a bad request changes nothing.
func (s *Server) applyConfig(in sandboxConfig) error {
	durations := map[string]*string{"latency": in.Latency, "searchDelay": in.SearchDelay, "outageRetryAfter": in.OutageRetryAfter}
	parsed := map[string]time.Duration{}
	for name, p := range durations {
		if p == nil {
			continue
		}
		d, err := time.ParseDuration(*p)
		if err != nil || d < 0 {
			return fmt.Errorf("%s: want a duration like 250ms, got %q", name, *p)
		}
		parsed[name] = d
	}
	if in.RateLimitResetLayout != nil {
		switch *in.RateLimitResetLayout {
		case "seconds":
			*in.RateLimitResetLayout = ResetLayoutSeconds
		case "minutes":
			*in.RateLimitResetLayout = ResetLayoutMinutes
		}
	}
	o, _ := s.options()
	set(&o.RatePerSecond, in.RatePerSecond)
	set(&o.Burst, in.Burst)
	set(&o.EndpointRates, in.EndpointRates)
	set(&o.TenantRatePerSecond, in.TenantRatePerSecond)
	set(&o.TenantBurst, in.TenantBurst)
	if in.RateLimitHeaders != nil {
		o.RateLimitHeaders = RateLimitHeaders(*in.RateLimitHeaders)
	}
	set(&o.RateLimitResetLayout, in.RateLimitResetLayout)
	set(&o.RateLimitReason, in.RateLimitReason)
	set(&o.Error5xxRate, in.Error5xxRate)
	set(&o.CreatedBut500Rate, in.CreatedBut500Rate)
	set(&o.ShuffleBulk, in.ShuffleBulk)
	set(&o.BulkReject400Count, in.BulkReject400Count)
	set(&o.BulkReject400Rate, in.BulkReject400Rate)
	if in.Outage != nil {
		o.Outage = Outage(*in.Outage)
	}
	set(&o.RequestTypeForm, in.RequestTypeForm)
	set(&o.StrictCustomers, in.StrictCustomers)
	set(&o.DeskAccess, in.DeskAccess)
	set(&o.RestrictedAddsCustomer, in.RestrictedAddsCustomer)
	set(&o.NotCustomerStatus, in.NotCustomerStatus)
	set(&o.ForbidCreateCustomer, in.ForbidCreateCustomer)
	set(&o.ForbidAddCustomer, in.ForbidAddCustomer)
	set(&o.HideEmails, in.HideEmails)
	set(&o.HideCustomerEmails, in.HideCustomerEmails)
	set(&o.CustomerPageMax, in.CustomerPageMax)
	set(&o.DenyCreate, in.DenyCreate)
	set(&o.AnonymousFallback, in.AnonymousFallback)
	set(&o.AnonymousMyself401, in.AnonymousMyself401)
	set(&o.CreateMetaList, in.CreateMetaList)
	set(&o.IssueTypesList, in.IssueTypesList)
	set(&o.CreateMetaPageSize, in.CreateMetaPageSize)
	if d, ok := parsed["latency"]; ok {
		o.Latency = d
	}
	if d, ok := parsed["searchDelay"]; ok {
		o.SearchDelay = d
	}
	if d, ok := parsed["outageRetryAfter"]; ok {
		o.OutageRetryAfter = d
	}
	if err := o.Validate(); err != nil {
		return err
	}
	if in.AuthFailure != nil && *in.AuthFailure != 0 && *in.AuthFailure != http.StatusUnauthorized && *in.AuthFailure != http.StatusForbidden {
		return fmt.Errorf("authFailure: want 0, 401 or 403, got %d", *in.AuthFailure)
	}
	s.Update(func(live *Options) { *live = o })
	if in.AuthFailure != nil {
		s.SetAuthFailure(*in.AuthFailure)
	}
	return nil
}

// Validate reports the first option whose value is none of its choices.
func (o Options) Validate() error {
	for _, c := range []struct {
		name, value string
		allowed     []string
	}{
		{"rateLimitHeaders", string(o.RateLimitHeaders), []string{"", string(RateLimitRetryAfter), string(RateLimitResetOnly), string(RateLimitNoHeaders)}},
		{"rateLimitResetLayout", o.RateLimitResetLayout, []string{"", ResetLayoutSeconds, ResetLayoutMinutes}},
		{"outage", string(o.Outage), []string{string(OutageNone), string(Outage503), string(Outage502), string(OutageDrop)}},
		{"deskAccess", o.DeskAccess, []string{"", DeskOpen, DeskRestricted}},
		{"requestTypeForm", o.RequestTypeForm, []string{"", RequestTypeFormID, RequestTypeFormPortalKey}},
		{"denyCreate", o.DenyCreate, []string{"", DenyCreate403, DenyCreate403Access, DenyCreate400Project}},
		{"createMetaList", o.CreateMetaList, []string{"", CreateMetaValues, CreateMetaFields, CreateMetaResults}},
		{"issueTypesList", o.IssueTypesList, []string{"", IssueTypesCloud, IssueTypesValues}},
	} {
		if !slices.Contains(c.allowed, c.value) {
			return fmt.Errorf("%s: %q is none of %q", c.name, c.value, c.allowed[1:])
		}
	}
	if o.NotCustomerStatus != 0 && o.NotCustomerStatus != http.StatusBadRequest && o.NotCustomerStatus != http.StatusForbidden {
		return fmt.Errorf("notCustomerStatus: want 400 or 403, got %d", o.NotCustomerStatus)
	}
	return nil
}
