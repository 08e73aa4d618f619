package jirasandbox

import (
	"maps"
	"net/http"
	"time"

	"github.com/cowjacket/formjira/internal/jirasandbox/accounts"
	"github.com/cowjacket/formjira/internal/jirasandbox/ratelimit"
)

// Update changes the live options: f gets a copy to modify, and the
// change applies to requests that arrive after Update returns. Every
// option marked "runtime" takes effect; the credentials, Customers, Seed,
// KeyPrefix, StartKey, StateFile and Logger are read only by New. The
// rate-limit buckets start afresh, full, only when a limit changes.
func (s *Server) Update(f func(o *Options)) {
	s.mu.Lock()
	old := s.opts
	next := old
	next.EndpointRates = maps.Clone(old.EndpointRates)
	f(&next)
	next.Email, next.APIToken, next.PAT = old.Email, old.APIToken, old.PAT
	next.Customers, next.Seed, next.KeyPrefix, next.StartKey = old.Customers, old.Seed, old.KeyPrefix, old.StartKey
	next.StateFile, next.Logger = old.StateFile, old.Logger
	s.opts = next
	s.mu.Unlock()
	s.apply(old, next, false)
}

// apply pushes the options the components hold themselves.
func (s *Server) apply(old, o Options, force bool) {
	limits := func(o Options) ratelimit.Limits {
		return ratelimit.Limits{
			Endpoint:  Limit{PerSecond: o.RatePerSecond, Burst: o.Burst},
			Endpoints: o.EndpointRates,
			Tenant:    Limit{PerSecond: o.TenantRatePerSecond, Burst: o.TenantBurst},
		}
	}
	was, now := limits(old), limits(o)
	if force || was.Endpoint != now.Endpoint || was.Tenant != now.Tenant || !maps.Equal(was.Endpoints, now.Endpoints) {
		s.lim.SetLimits(now)
	}
	s.lim.SetStyle(ratelimit.Style{Headers: o.RateLimitHeaders, ResetLayout: o.RateLimitResetLayout, Reason: o.RateLimitReason})
	s.dir.SetPolicy(accounts.Policy{
		ForbidCreate: o.ForbidCreateCustomer, ForbidAdd: o.ForbidAddCustomer,
		HideEmails: o.HideEmails, HideCustomerEmails: o.HideCustomerEmails,
		OpenDesk:        o.StrictCustomers && o.DeskAccess != DeskRestricted,
		CustomerPageMax: o.CustomerPageMax,
	})
}

// SetRate changes every endpoint's own rate limit; perSec <= 0 turns it
// off. Every bucket starts afresh, full: the new limit applies from now on.
func (s *Server) SetRate(perSec float64, burst int) {
	s.mu.Lock()
	s.opts.RatePerSecond, s.opts.Burst = perSec, burst
	o := s.opts
	s.mu.Unlock()
	s.apply(o, o, true)
}

// SetEndpointRates replaces the per-endpoint overrides (nil: none).
func (s *Server) SetEndpointRates(rates map[string]Limit) {
	s.Update(func(o *Options) { o.EndpointRates = maps.Clone(rates) })
}

// SetTenantRate sets the site-wide bucket; perSec <= 0 turns it off.
func (s *Server) SetTenantRate(perSec float64, burst int) {
	s.Update(func(o *Options) { o.TenantRatePerSecond, o.TenantBurst = perSec, burst })
}

// SetRateLimitHeaders picks a 429's headers and X-RateLimit-Reset's
// layout ("" = ResetLayoutSeconds).
func (s *Server) SetRateLimitHeaders(h RateLimitHeaders, resetLayout string) {
	s.Update(func(o *Options) { o.RateLimitHeaders, o.RateLimitResetLayout = h, resetLayout })
}

// SetRateLimitReason replaces RateLimit-Reason ("" = the documented one).
func (s *Server) SetRateLimitReason(reason string) {
	s.Update(func(o *Options) { o.RateLimitReason = reason })
}

// SetError5xxRate changes the fraction of requests answered 500/502/503.
func (s *Server) SetError5xxRate(f float64) { s.Update(func(o *Options) { o.Error5xxRate = f }) }

// SetCreatedBut500Rate changes the fraction of creates answered 500 after
// the issue was created.
func (s *Server) SetCreatedBut500Rate(f float64) {
	s.Update(func(o *Options) { o.CreatedBut500Rate = f })
}

// SetLatency changes the latency added to every API call.
func (s *Server) SetLatency(d time.Duration) { s.Update(func(o *Options) { o.Latency = d }) }

// SetSearchDelay changes how long new issues stay invisible to search;
// issues already created are judged by the new delay at once.
func (s *Server) SetSearchDelay(d time.Duration) { s.Update(func(o *Options) { o.SearchDelay = d }) }

// SetShuffleBulk turns shuffled bulk-create answers on or off.
func (s *Server) SetShuffleBulk(on bool) { s.Update(func(o *Options) { o.ShuffleBulk = on }) }

// SetBulkReject400 makes the next count bulk creates, and a fraction rate
// of the later ones, answer a 400 without element errors.
func (s *Server) SetBulkReject400(count int, rate float64) {
	s.Update(func(o *Options) { o.BulkReject400Count, o.BulkReject400Rate = count, rate })
}

// SetOutage starts an outage of that kind, or ends it (OutageNone).
func (s *Server) SetOutage(mode Outage) { s.Update(func(o *Options) { o.Outage = mode }) }

// SetOutageRetryAfter sets the Retry-After of Outage503's answers (0: none).
func (s *Server) SetOutageRetryAfter(d time.Duration) {
	s.Update(func(o *Options) { o.OutageRetryAfter = d })
}

// SetStrictCustomers turns JSM's raiseOnBehalfOf rules on or off, with the
// desk's access (DeskOpen or DeskRestricted).
func (s *Server) SetStrictCustomers(strict bool, deskAccess string) {
	s.Update(func(o *Options) { o.StrictCustomers, o.DeskAccess = strict, deskAccess })
}

// SetForbidCreateCustomer makes POST /rest/servicedeskapi/customer 403 or not.
func (s *Server) SetForbidCreateCustomer(on bool) {
	s.Update(func(o *Options) { o.ForbidCreateCustomer = on })
}

// SetForbidAddCustomer makes adding customers to the desk 403 or not.
func (s *Server) SetForbidAddCustomer(on bool) {
	s.Update(func(o *Options) { o.ForbidAddCustomer = on })
}

// SetHideEmails hides e-mail addresses from the platform's user endpoints
// and from JSM's customer list.
func (s *Server) SetHideEmails(platform, customers bool) {
	s.Update(func(o *Options) { o.HideEmails, o.HideCustomerEmails = platform, customers })
}

// SetDenyCreate refuses every create in that style (DenyCreate403…), or
// allows them again ("").
func (s *Server) SetDenyCreate(style string) { s.Update(func(o *Options) { o.DenyCreate = style }) }

// SetAnonymousFallback serves bad credentials as anonymous (true) or
// answers 401 (false).
func (s *Server) SetAnonymousFallback(on bool) {
	s.Update(func(o *Options) { o.AnonymousFallback = on })
}

// SetCreateMeta picks createmeta's list keys and page-size cap.
func (s *Server) SetCreateMeta(list, issueTypesList string, pageSize int) {
	s.Update(func(o *Options) {
		o.CreateMetaList, o.IssueTypesList, o.CreateMetaPageSize = list, issueTypesList, pageSize
	})
}

// SetAuthFailure makes every API call answer status (401 or 403) as Jira
// does for a revoked token or a CAPTCHA-locked account; 0 turns it off.
func (s *Server) SetAuthFailure(status int) {
	if status != 0 && status != http.StatusUnauthorized && status != http.StatusForbidden {
		status = http.StatusUnauthorized
	}
	s.mu.Lock()
	s.authFailure = status
	s.mu.Unlock()
}

// options is a copy of the live options.
func (s *Server) options() (Options, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opts, s.authFailure
}
