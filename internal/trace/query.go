// Package trace answers "where is my request?": for a query (a record hash
// or a prefix of it, an e-mail address, part of a name, id=N, a Jira key)
// it finds the requests in the request index (internal/index) and tells
// each one's journey — the row, its place in FORMS, deliveries and
// attempts, and the outcome: a ticket, a dead letter, still on its way —
// or, when nothing matches, what capture says. `ticketer trace` and the
// console share it.
package trace

import (
	"regexp"
	"strings"

	"github.com/cowjacket/formjira/internal/index"
)

// Kinds of query.
const (
	KindHash    = "hash"
	KindEmail   = "email"
	KindName    = "name"
	KindID      = "id"
	KindJiraKey = "jira_key"
)

var jiraKeyRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*-[0-9]+$`)

// Query is a parsed query.
type Query struct {
	Text string `json:"text"`
	Kind string `json:"kind"`
	Term string `json:"term"` // what is looked up
}

// Parse tells what q asks for: id=N, an e-mail (has '@'), a Jira key
// (CP-123), a hash prefix (8+ hex digits), else words of a name.
func Parse(q string) Query {
	q = strings.TrimSpace(q)
	lower := strings.ToLower(q)
	switch {
	case strings.HasPrefix(lower, "id="):
		return Query{q, KindID, strings.TrimSpace(q[3:])}
	case strings.Contains(q, "@"):
		return Query{q, KindEmail, lower}
	case jiraKeyRE.MatchString(q):
		return Query{q, KindJiraKey, strings.ToUpper(q)}
	case index.IsHashPrefix(lower):
		return Query{q, KindHash, lower}
	}
	return Query{q, KindName, q}
}
