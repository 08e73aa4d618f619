package jirasandbox

import (
	"log/slog"
	"time"

	"github.com/cowjacket/formjira/internal/jirasandbox/accounts"
	"github.com/cowjacket/formjira/internal/jirasandbox/catalog"
	"github.com/cowjacket/formjira/internal/jirasandbox/issues"
	"github.com/cowjacket/formjira/internal/jirasandbox/ratelimit"
)

// Issue is the sandbox's record of a created issue.
type Issue = issues.Issue

// Account is an account of the site: the bot (AccountType "atlassian") or
// a JSM customer ("customer"), with the service desks it is a customer of.
type Account = accounts.Account

// Limit is a token bucket: PerSecond tokens a second, at most Burst.
type Limit = ratelimit.Limit

// The project's JSM identifiers (jira/README.md).
const (
	ServiceDeskID = catalog.ServiceDeskID // "4"
	RequestTypeID = catalog.RequestTypeID // "41"
	// PortalKey and RequestTypeKey41 form request type 41's other value
	// for the Customer Request Type field: "cp/phone-equipment".
	PortalKey        = catalog.PortalKey
	RequestTypeKey41 = catalog.RequestTypeKey41
	// RequestTypeField is the Customer Request Type field (vp-origin).
	RequestTypeField = catalog.RequestTypeField // "customfield_10010"
	// BotAccountID is the accountId of the sandbox's own account (the
	// credentials'), sent as X-AAccountId and the default reporter.
	BotAccountID = accounts.BotAccountID
)

// RateLimitHeaders says which headers a 429 carries.
type RateLimitHeaders = ratelimit.Headers

const (
	// RateLimitRetryAfter (the default): Retry-After, X-RateLimit-Limit,
	// -Remaining, -Reset and RateLimit-Reason.
	RateLimitRetryAfter = ratelimit.HeadersRetryAfter
	// RateLimitResetOnly: X-RateLimit-Reset and RateLimit-Reason only.
	RateLimitResetOnly = ratelimit.HeadersReset
	// RateLimitNoHeaders: a bare 429.
	RateLimitNoHeaders = ratelimit.HeadersNone
)

// X-RateLimit-Reset layouts (both seen from Jira Cloud).
const (
	ResetLayoutSeconds = ratelimit.ResetSeconds // "2006-01-02T15:04:05Z", the default
	ResetLayoutMinutes = ratelimit.ResetMinutes // "2006-01-02T15:04Z"
)

// Outage is how the site fails while it is down.
type Outage string

const (
	OutageNone Outage = ""
	// Outage503: every API call answers 503 (with Retry-After when
	// OutageRetryAfter is set) and a non-JSON body, as an edge proxy would.
	Outage503 Outage = "503"
	// Outage502: every API call answers 502.
	Outage502 Outage = "502"
	// OutageDrop: every API call's connection is closed without an answer.
	OutageDrop Outage = "drop"
)

// Styles of refusing creates for a missing Create issues permission.
const (
	DenyCreate403        = issues.DenyCreate403
	DenyCreate403Access  = issues.DenyCreate403Access
	DenyCreate400Project = issues.DenyCreate400Project
)

// Forms of the Customer Request Type value, for RequestTypeForm.
const (
	RequestTypeFormID        = issues.RequestTypeFormID        // "41" only
	RequestTypeFormPortalKey = issues.RequestTypeFormPortalKey // "cp/phone-equipment" only
)

// Service desk channel access, for StrictCustomers.
const (
	DeskOpen       = issues.DeskOpen
	DeskRestricted = issues.DeskRestricted
)

// createmeta list keys (CreateMetaList, IssueTypesList).
const (
	CreateMetaValues  = catalog.ListValues  // DC 9 and the fixtures: "values" with isLast
	CreateMetaFields  = catalog.ListFields  // Jira Cloud: "fields", no isLast
	CreateMetaResults = catalog.ListResults // declared by Cloud's schema too
	IssueTypesCloud   = catalog.ListIssueTypes
	IssueTypesValues  = catalog.ListValues
)

// Options configure a Server. The zero value is a permissive sandbox: no
// auth, no rate limit, no faults, lenient customers, today's shapes.
// Fields marked "runtime" can be changed later through a setter or Update.
type Options struct {
	// Email and APIToken are the Jira Cloud basic-auth credentials; when
	// both are empty (and PAT is empty) requests are not authenticated and
	// every caller is the bot. Email is also the bot's e-mail.
	Email, APIToken string
	// PAT, when set, is also accepted as "Authorization: Bearer <PAT>"
	// (Jira Data Center personal access tokens).
	PAT string

	// RatePerSecond and Burst are every endpoint's own token bucket: Jira
	// Cloud's burst limits are per tenant and per API resource path and
	// method, so "POST /rest/api/3/issue/bulk" and "POST
	// /rest/api/3/issue/bulkfetch" are limited separately. 0 = no limit.
	// Runtime: SetRate.
	RatePerSecond float64
	Burst         int
	// EndpointRates override RatePerSecond/Burst for single endpoints,
	// keyed by route as Request.Endpoint shows it, e.g. "GET
	// /rest/servicedeskapi/servicedesk/{desk}/customer" (Jira documents 5
	// per second for it). A PerSecond <= 0 exempts the endpoint. Runtime:
	// SetEndpointRates.
	EndpointRates map[string]Limit
	// TenantRatePerSecond and TenantBurst, when set, are one more bucket
	// every API call draws on (a site-wide budget); its 429s carry
	// RateLimit-Reason jira-quota-tenant-based, the endpoint buckets'
	// jira-burst-based. Runtime: SetTenantRate.
	TenantRatePerSecond float64
	TenantBurst         int
	// RateLimitHeaders picks a 429's headers ("" = RateLimitRetryAfter).
	// Runtime: SetRateLimitHeaders.
	RateLimitHeaders RateLimitHeaders
	// RateLimitResetLayout is X-RateLimit-Reset's layout ("" =
	// ResetLayoutSeconds). Runtime: SetRateLimitHeaders.
	RateLimitResetLayout string
	// RateLimitReason, when set, replaces the documented RateLimit-Reason
	// (e.g. the older "jira-cost-based"). Runtime: SetRateLimitReason.
	RateLimitReason string

	// Error5xxRate is the fraction of API requests answered 500, 502 or 503
	// before anything is done. Runtime: SetError5xxRate.
	Error5xxRate float64
	// CreatedBut500Rate is the fraction of creates (single, bulk, JSM)
	// that create and record the issue(s) yet answer 500: the "unknown
	// outcome" case. Runtime: SetCreatedBut500Rate.
	CreatedBut500Rate float64
	// Latency is added to every API call. Runtime: SetLatency.
	Latency time.Duration
	// SearchDelay is how long a created issue stays invisible to JQL
	// search (every clause: labels, text, key): Jira's index is eventually
	// consistent. GET issue, bulkfetch and reconcileIssues are not subject
	// to it. Visibility is decided with the delay in force at search time.
	// Runtime: SetSearchDelay.
	SearchDelay time.Duration
	// ShuffleBulk answers a bulk create's issues[] in a random order
	// (JRACLOUD-81005: no order is promised). Runtime: SetShuffleBulk.
	ShuffleBulk bool
	// DataCenter answers as Jira Data Center does: serverInfo's
	// deploymentType "DataCenter", the search of /rest/api/N/search
	// (startAt paging, a total; Cloud removed it), and no enhanced search
	// (/search/jql) or bulkfetch, both Cloud's: 404.
	// https://developer.atlassian.com/server/jira/platform/rest/v11002/api-group-search/
	// Runtime: Update.
	DataCenter bool
	// BulkFetchErrors answers bulkfetch with every issue found under
	// issueErrors, not issues: "issues that can't be returned due to a
	// retriable error or payload constraint". Runtime: Update.
	BulkFetchErrors bool
	// BulkReject400Count makes the next N bulk creates answer 400
	// {"errorMessages":["…"],"errors":{}} about the request as a whole,
	// creating nothing; it counts down. BulkReject400Rate does the same for
	// a fraction of bulk creates. Runtime: SetBulkReject400.
	BulkReject400Count int
	BulkReject400Rate  float64
	// Outage, when set, makes every API call (myself and serverInfo too)
	// fail that way, at once (before Latency), until it is cleared; calls
	// are still logged. Runtime: SetOutage.
	Outage Outage
	// OutageRetryAfter, when positive, is sent as Retry-After on an
	// Outage503's answers. Runtime: SetOutageRetryAfter.
	OutageRetryAfter time.Duration

	// RequestTypeForm, when set, accepts only one form of the Customer
	// Request Type value on create: RequestTypeFormID ("41") or
	// RequestTypeFormPortalKey ("cp/phone-equipment"); "" accepts both.
	// Atlassian documents neither form. Runtime: Update.
	RequestTypeForm string

	// Lenient marks options a test harness must take as given, not made
	// Cloud-realistic (ticketertest.Realistic); the sandbox ignores it.
	Lenient bool

	// JSMErrorsByName words a JSM request's field errors by field name,
	// "Please provide a valid value for field 'Department'", as public
	// reports of real sites show them; JSM documents only errorMessage
	// (translated), no per-field structure. Off: "customfield_10073: …".
	JSMErrorsByName bool

	// Customers are accounts that exist before the sandbox starts (an
	// empty AccountID gets one generated; AccountType "" = "customer").
	Customers []Account
	// StrictCustomers enforces JSM's raiseOnBehalfOf rules: it must be the
	// accountId of an existing account (an e-mail or unknown id is 400 in
	// JSM's shape naming raiseOnBehalfOf), and DeskAccess applies. Off:
	// any string is taken, as before. Runtime: SetStrictCustomers.
	StrictCustomers bool
	// DeskAccess is the desk's channel access under StrictCustomers:
	// DeskOpen ("" too: any account may be raised for and becomes a
	// customer of desk 4) or DeskRestricted (the account must already be a
	// customer of desk 4, else NotCustomerStatus). Runtime:
	// SetStrictCustomers.
	DeskAccess string
	// RestrictedAddsCustomer: on a restricted desk, raising on behalf of a
	// non-customer adds them as a customer instead of failing (the KB's
	// "or by raising a request on their behalf"). Runtime: Update.
	RestrictedAddsCustomer bool
	// NotCustomerStatus is the status for raising on behalf of a
	// non-customer of a restricted desk: 400 (0 too) or 403. Runtime: Update.
	NotCustomerStatus int
	// ForbidCreateCustomer: POST /rest/servicedeskapi/customer answers 403
	// (the bot lacks Jira Administrators). Runtime: SetForbidCreateCustomer.
	ForbidCreateCustomer bool
	// ForbidAddCustomer: POST /rest/servicedeskapi/servicedesk/{id}/customer
	// answers 403 (the bot is no service desk administrator). Runtime:
	// SetForbidAddCustomer.
	ForbidAddCustomer bool
	// HideEmails leaves emailAddress out of user/search and user answers
	// (profile visibility); query still matches e-mails. HideCustomerEmails
	// answers emailAddress null in JSM's customer list. Runtime: SetHideEmails.
	HideEmails         bool
	HideCustomerEmails bool
	// CustomerPageMax caps JSM customer-list pages (default and maximum
	// 50): a larger limit then gets fewer items with isLastPage false.
	// Runtime: Update.
	CustomerPageMax int

	// DenyCreate, when set (DenyCreate403, DenyCreate403Access,
	// DenyCreate400Project), refuses every create as Jira does when the
	// bot lacks the Create issues permission: platform single creates
	// answer that status and message; bulk creates fail every element
	// (overall 400); JSM request creates answer 403 in JSM's shape.
	// Separate from SetAuthFailure. Runtime: SetDenyCreate.
	DenyCreate string
	// AnonymousFallback serves wrong or missing credentials as an
	// anonymous user instead of 401 on the endpoints Jira documents as
	// anonymous-capable (search/jql, bulkfetch, createmeta, user/search,
	// serverInfo, GET issue) and on myself: 200 with nothing in them
	// (no issues, no fields, no users, 404 for an issue, an empty myself),
	// no X-AAccountId, and X-Seraph-LoginReason: AUTHENTICATED_FAILED when
	// credentials were sent. Other endpoints still answer 401. Runtime:
	// SetAnonymousFallback.
	AnonymousFallback bool
	// AnonymousMyself401 keeps myself at 401 under AnonymousFallback (the
	// documented answer) instead of an empty 200. Runtime: Update.
	AnonymousMyself401 bool

	// CreateMetaList is the list key of createmeta field pages
	// ("" = CreateMetaValues, today's; CreateMetaFields is Jira Cloud's).
	// IssueTypesList is the issue-type page's ("" = IssueTypesCloud,
	// "issueTypes"; or IssueTypesValues). CreateMetaPageSize, when
	// positive, caps maxResults on both (a client must then read several
	// pages; the answer's maxResults shows the cap). Runtime: SetCreateMeta.
	CreateMetaList     string
	IssueTypesList     string
	CreateMetaPageSize int

	// Seed makes the injected faults reproducible.
	Seed int64
	// KeyPrefix is the issue key prefix (default "CP"); StartKey the first
	// issue number (default 1).
	KeyPrefix string
	StartKey  int

	// StateFile, when set, keeps issues, the key counter, added options and
	// customers across restarts (the local demo); it is rewritten on every
	// change.
	StateFile string

	// Logger receives one line per created issue and per injected fault;
	// nil discards.
	Logger *slog.Logger
}

// Request is one API request as the sandbox answered it.
type Request struct {
	Time   time.Time // arrival
	Method string
	Path   string
	// Endpoint is the route that served it, the key of its rate-limit
	// bucket: "POST /rest/api/3/issue/bulk", "GET /rest/api/3/issue/{key}".
	Endpoint string
	// Status is the answer's status; 0 when the connection was dropped
	// without one (OutageDrop), 499 when the client gave up during Latency.
	Status int
	// RetryAfter is the answer's Retry-After (a 429's or an outage 503's),
	// 0 when it had none.
	RetryAfter time.Duration
	// RateLimitReason and RateLimitReset are a 429's RateLimit-Reason and
	// X-RateLimit-Reset as sent ("" when absent).
	RateLimitReason string
	RateLimitReset  string
	// Anonymous: served as an anonymous user (bad or no credentials).
	Anonymous bool
	// Outage is the outage that answered it ("" = none).
	Outage Outage
}
