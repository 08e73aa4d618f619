// Package issues is the sandbox's issue store and every endpoint that
// creates or reads issues: platform create and bulk create, JSM request
// create, get, edit, bulk fetch and JQL search, with the consistency and
// failure behaviour Jira Cloud documents for each.
package issues

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cowjacket/formjira/internal/jirasandbox/accounts"
	"github.com/cowjacket/formjira/internal/jirasandbox/catalog"
)

// Issue is the sandbox's record of a created issue.
type Issue struct {
	Key string
	ID  string
	// Fields are the fields as received (JSM: the requestFieldValues).
	Fields map[string]any
	Labels []string
	// API is "v2", "v3", "bulk-v2", "bulk-v3" or "jsm".
	API     string
	Created time.Time
	// RaisedOnBehalfOf is the JSM request's raiseOnBehalfOf as sent (with
	// strict customer rules, an accountId); "" otherwise.
	RaisedOnBehalfOf string
	// RequestTypeID is the customer request type the issue was created
	// with ("41"); "" means none, and such an issue is no customer
	// request: not on the portal, no notifications, missed by queues and
	// SLAs keyed on request types.
	RequestTypeID string
	// Reporter is the reporter's accountId: the bot's unless the create set
	// "reporter" or the request was raised on behalf of someone.
	Reporter string
}

// Summary is the issue's summary, if it is a string.
func (i Issue) Summary() string {
	s, _ := i.Fields["summary"].(string)
	return s
}

func (i *Issue) clone() Issue {
	c := *i
	c.Fields = maps.Clone(i.Fields)
	c.Labels = slices.Clone(i.Labels)
	return c
}

// How a create is refused when the bot lacks the Create issues
// permission. Jira's reference lists both 400 ("is by a user who does not
// have the necessary permission") and 403 for createIssue, and users
// report three bodies (research notes §5.1): each is one choice.
const (
	// DenyCreate403 answers 403 {"errorMessages":["You do not have
	// permission to create issues in this project."],"errors":{}}.
	DenyCreate403 = "403"
	// DenyCreate403Access answers 403 {"errorMessages":["You currently
	// don't have access to perform this operation."],"errors":{}}.
	DenyCreate403Access = "403-access"
	// DenyCreate400Project answers 400 {"errorMessages":["The value 'CP'
	// does not exist for the field 'project'."],"errors":{}}: the project
	// is invisible to the bot.
	DenyCreate400Project = "400-project"
)

// Service-desk channel access (Project settings > Customer permissions):
// https://support.atlassian.com/jira/kb/manage-access-jira-service-management-projects-requests/
const (
	// DeskOpen: anyone with an account may raise requests; people with
	// accounts are automatically on the Customers list.
	DeskOpen = "open"
	// DeskRestricted: only the project's customers may raise requests.
	DeskRestricted = "restricted"
)

// Policy is what the server's options decide for the issue endpoints; it
// is read afresh on every request.
type Policy struct {
	// SearchDelay is how long a new issue stays invisible to JQL search.
	SearchDelay time.Duration
	// ShuffleBulk answers a bulk create's issues[] in random order.
	ShuffleBulk bool
	// BulkFetchErrors lists bulkfetch's issues under issueErrors.
	BulkFetchErrors bool
	// DataCenter: the legacy search only; no search/jql, no bulkfetch.
	DataCenter bool
	// DenyCreate, when set (DenyCreate403…), refuses every create.
	DenyCreate string
	// StrictCustomers: raiseOnBehalfOf must be an existing accountId, and
	// DeskAccess applies.
	StrictCustomers bool
	// DeskAccess is DeskOpen ("" too) or DeskRestricted.
	DeskAccess string
	// RestrictedAddsCustomer: on a restricted desk, raising a request on
	// behalf of a non-customer makes them one instead of failing.
	RestrictedAddsCustomer bool
	// NotCustomerStatus is the status for raising on behalf of a
	// non-customer of a restricted desk: 400 (default) or 403.
	NotCustomerStatus int
	// RequestTypeForm restricts the Customer Request Type's accepted value
	// to one form: RequestTypeFormID or RequestTypeFormPortalKey ("" = both).
	RequestTypeForm string
	// JSMErrorsByName words a request's field errors as JSM sites are seen
	// to: by the field's name ("… for field 'Department'"), not its id.
	JSMErrorsByName bool
}

// Forms of the Customer Request Type value on create. Atlassian's
// reference documents neither; scripts use the id, JSM's Java API calls
// "<portal key>/<request type key>" the field's value (research notes §2).
const (
	RequestTypeFormID        = "id"
	RequestTypeFormPortalKey = "portal-key"
)

// Faults are the server's seeded dice.
type Faults interface {
	// CreatedBut500 decides whether a create that succeeded answers 500.
	CreatedBut500() bool
	// RejectBulk decides whether a bulk create is refused as a whole.
	RejectBulk() bool
	// Shuffle permutes n items.
	Shuffle(n int, swap func(i, j int))
}

// Config builds a Service.
type Config struct {
	Catalog   *catalog.Catalog
	Accounts  *accounts.Directory
	Logger    *slog.Logger
	KeyPrefix string // "CP"
	StartKey  int    // first issue number
	Policy    func() Policy
	Faults    Faults
	// Changed is called after every change (without locks held).
	Changed func()
}

// Service holds the issues. Safe for concurrent use.
type Service struct {
	cat     *catalog.Catalog
	dir     *accounts.Directory
	log     *slog.Logger
	prefix  string
	policy  func() Policy
	faults  Faults
	changed func()

	mu      sync.Mutex
	nextNum int
	issues  []*Issue
}

// New builds an empty store.
func New(cfg Config) *Service {
	s := &Service{
		cat: cfg.Catalog, dir: cfg.Accounts, log: cfg.Logger, prefix: cfg.KeyPrefix,
		policy: cfg.Policy, faults: cfg.Faults, changed: cfg.Changed, nextNum: cfg.StartKey,
	}
	if s.changed == nil {
		s.changed = func() {}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// List returns the issues, oldest first.
func (s *Service) List() []Issue {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Issue, len(s.issues))
	for i, is := range s.issues {
		out[i] = is.clone()
	}
	return out
}

// ByLabel returns the issues carrying label, oldest first, whether or not
// search can see them yet.
func (s *Service) ByLabel(label string) []Issue {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Issue
	for _, is := range s.issues {
		if slices.Contains(is.Labels, label) {
			out = append(out, is.clone())
		}
	}
	return out
}

// Forget drops every issue; numbering continues, as Jira's does after
// issues are deleted.
func (s *Service) Forget() {
	s.mu.Lock()
	s.issues = nil
	s.mu.Unlock()
	s.changed()
}

// Snapshot returns the key counter and the issues, for a state file.
func (s *Service) Snapshot() (nextNum int, issues []Issue) {
	s.mu.Lock()
	defer s.mu.Unlock()
	issues = make([]Issue, len(s.issues))
	for i, is := range s.issues {
		issues[i] = is.clone()
	}
	return s.nextNum, issues
}

// Restore replaces the issues and advances the key counter to nextNum.
func (s *Service) Restore(nextNum int, issues []Issue) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.issues = nil
	for _, is := range issues {
		c := is.clone()
		s.issues = append(s.issues, &c)
	}
	s.nextNum = max(s.nextNum, nextNum)
}

// allocate takes the next issue number: Jira's counter advances even when
// the create then fails validation, so keys have gaps.
func (s *Service) allocate() int {
	s.mu.Lock()
	n := s.nextNum
	s.nextNum++
	s.mu.Unlock()
	s.changed()
	return n
}

func (s *Service) record(num int, is *Issue) *Issue {
	is.Key = fmt.Sprintf("%s-%d", s.prefix, num)
	is.ID = strconv.Itoa(10000 + num)
	is.Created = time.Now()
	if is.Reporter == "" {
		is.Reporter = accounts.BotAccountID
	}
	s.mu.Lock()
	s.issues = append(s.issues, is)
	s.mu.Unlock()
	s.changed()
	s.log.Info("jira sandbox issue created", "jira_key", is.Key, "api", is.API, "labels", is.Labels, "request_type", is.RequestTypeID)
	return is
}

func (s *Service) find(keyOrID string) *Issue {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, is := range s.issues {
		if strings.EqualFold(is.Key, keyOrID) || is.ID == keyOrID {
			return is
		}
	}
	return nil
}

func labelsOf(v any) []string {
	var out []string
	for _, l := range asSlice(v) {
		if s, ok := l.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

func toAnySlice(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
