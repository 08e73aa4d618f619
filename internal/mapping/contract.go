// Package mapping turns a form event into the Jira request that creates its
// ticket, as declared in deploy/mapping.yaml, and checks a mapping against
// what Jira says the project accepts.
//
// The ticket it builds (ticket.Request) and Jira's field metadata
// (ticket.Meta) are package ticket's: jira parses and sends them.
package mapping

import (
	"errors"
)

// ErrUnmappable marks an event that can never be mapped (a bad value, a
// missing required column): it is dead-lettered at once, never retried.
// Errors wrapping it name the column and the Jira field.
var ErrUnmappable = errors.New("unmappable")

// Mode is how tickets are created.
type Mode string

const (
	// ModePlatform creates issues with the platform REST API (v2 or v3),
	// in bulk where possible.
	ModePlatform Mode = "platform"
	// ModeJSM raises customer requests with the Jira Service Management API.
	ModeJSM Mode = "jsm"
)
