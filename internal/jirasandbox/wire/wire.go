// Package wire holds the Jira Cloud wire conventions every endpoint of the
// sandbox shares: JSON answers, the platform's and Service Management's two
// error shapes, request bodies, links back to the site, and who the caller
// is (the bot or an anonymous user).
package wire

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// JiraTime is the timestamp form Jira's REST API answers with.
const JiraTime = "2006-01-02T15:04:05.000-0700"

// JSON answers v as JSON with status.
func JSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	Raw(w, status, b)
}

// Raw answers b, already JSON, with status.
func Raw(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// Errors answers in the platform's ErrorCollection shape,
// {"errorMessages":[…],"errors":{field:msg}}: both keys always present.
// https://developer.atlassian.com/cloud/jira/platform/rest/v3/intro/#status-codes
func Errors(w http.ResponseWriter, status int, messages []string, fieldErrs map[string]string) {
	if messages == nil {
		messages = []string{}
	}
	if fieldErrs == nil {
		fieldErrs = map[string]string{}
	}
	JSON(w, status, map[string]any{"errorMessages": messages, "errors": fieldErrs})
}

// JSMError answers in the Service Management API's ErrorResponse shape,
// {"errorMessage":…,"i18nErrorMessage":{"i18nKey":…,"parameters":[…]}}.
// https://developer.atlassian.com/cloud/jira/service-desk/rest/intro/ ("Status codes and responses")
func JSMError(w http.ResponseWriter, status int, msg, i18nKey string, params []string) {
	if params == nil {
		params = []string{}
	}
	JSON(w, status, map[string]any{
		"errorMessage":     msg,
		"i18nErrorMessage": map[string]any{"i18nKey": i18nKey, "parameters": params},
	})
}

// IsJSM reports whether r is a Service Management API call, which answers
// errors in JSM's shape.
func IsJSM(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/rest/servicedeskapi/") }

// Error answers msg in the shape of the API r called.
func Error(w http.ResponseWriter, r *http.Request, status int, msg, i18nKey string) {
	if IsJSM(r) {
		JSMError(w, status, msg, i18nKey, nil)
		return
	}
	Errors(w, status, []string{msg}, nil)
}

// Decode reads a JSON body into v, answering Jira's 400 when it is not JSON.
func Decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 10<<20)).Decode(v); err != nil {
		Error(w, r, http.StatusBadRequest, "Unexpected character in request body: "+err.Error(), "sd.request.body.invalid")
		return false
	}
	return true
}

// BaseURL is the site's address as the caller reached it.
func BaseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// APIPrefix is /rest/api/2 or /rest/api/3, whichever the request used
// (/rest/api/2 for the JSM API).
func APIPrefix(r *http.Request) string {
	if strings.HasPrefix(r.URL.Path, "/rest/api/3/") {
		return "/rest/api/3"
	}
	return "/rest/api/2"
}

// APIVersion is "v3" for /rest/api/3 calls, else "v2".
func APIVersion(r *http.Request) string {
	if strings.HasPrefix(r.URL.Path, "/rest/api/3/") {
		return "v3"
	}
	return "v2"
}

// SplitList splits a comma-separated parameter, dropping empty items.
func SplitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// IDString accepts ids sent as JSON strings or numbers, as Jira does.
func IDString(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	}
	return ""
}

// AsSlice is v as a JSON array, nil when it is none.
func AsSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// IntParam reads a non-negative integer query parameter; def when absent
// or not a number.
func IntParam(r *http.Request, name string, def int) int {
	n, err := strconv.Atoi(r.URL.Query().Get(name))
	if err != nil || n < 0 {
		return def
	}
	return n
}

// Caller is who a request is served as.
type Caller struct {
	// AccountID is the authenticated account; "" for an anonymous caller.
	AccountID string
	// Anonymous: the credentials were missing or wrong and the site served
	// the request as an anonymous user instead of refusing it.
	Anonymous bool
}

type callerKey struct{}

// WithCaller records who r is served as.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerOf is who r is served as (the zero Caller, not anonymous, when the
// middleware did not say).
func CallerOf(r *http.Request) Caller {
	c, _ := r.Context().Value(callerKey{}).(Caller)
	return c
}
