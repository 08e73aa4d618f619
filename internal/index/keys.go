// Package index is the request index in KV bucket FORMS_INDEX, which
// `ticketer trace` and the console search by, so that finding a request
// costs a few key look-ups whatever the size of FORMS:
//
//	h.<hash[:8]>.<hash[8:]>   the event's FORMS sequence, subject, time  (Entry)
//	s.<hash>                  its latest delivery or replay outcome      (State)
//	e.<digest of e-mail>.<hash>, n.<name word>.<hash>, i.<row id>.<hash>
//	                          postings: the key is the whole fact
//	k.<JIRA-KEY>              the hash the ticket was created for
//	checkpoint                the last FORMS sequence indexed
//
// A Tailer in each ticketer service indexes FORMS as events arrive (so a
// request still waiting in the backlog is found too, and a first start
// indexes the history); a Recorder writes each delivery's or replay's
// outcome in the background, never holding up a ticket.
package index

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"unicode"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

const (
	checkpointKey = "checkpoint"
	entryPrefix   = "h."
	statePrefix   = "s."
	emailPrefix   = "e."
	namePrefix    = "n."
	idPrefix      = "i."
	jiraPrefix    = "k."
)

// IsHash says whether s is a full record hash (64 lower-case hex digits).
func IsHash(s string) bool { return len(s) == 64 && isHex(s) }

// IsHashPrefix: at least 8 hex digits, at most a whole hash.
func IsHashPrefix(s string) bool { return len(s) >= 8 && len(s) <= 64 && isHex(s) }

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func entryKey(hash string) string { return entryPrefix + hash[:8] + "." + hash[8:] }
func stateKey(hash string) string { return statePrefix + hash }
func jiraKey(key string) string   { return jiraPrefix + token(strings.ToUpper(strings.TrimSpace(key))) }

// EmailTerm is the posting token of an e-mail address: KV keys cannot hold
// '@' or '+', and case does not matter in practice.
func EmailTerm(email string) string {
	return digest(strings.ToLower(strings.TrimSpace(email)))
}

// IDTerm is the token of a row's primary key as text ("17").
func IDTerm(id string) string { return plainOrDigest(strings.TrimSpace(id)) }

// NameTerms are the tokens of a name's words: lower case, accents
// dropped ("Zoë O'Brien" → zoe, o, brien); each word of a query must be
// one of a name's words.
func NameTerms(name string) []string {
	var out []string
	seen := map[string]bool{}
	for _, w := range strings.FieldsFunc(fold(name), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		t := plainOrDigest(w)
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out
}

func fold(s string) string {
	// A chain keeps state: one per call (the tailer and queries run at once).
	folder := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
	out, _, err := transform.String(folder, s)
	if err != nil {
		out = s
	}
	return strings.ToLower(out)
}

// plainOrDigest keeps short [a-z0-9] words readable in the keys (`nats kv
// ls FORMS_INDEX` shows n.curtis.…) and digests anything else.
func plainOrDigest(s string) string {
	if len(s) == 0 || len(s) > 40 {
		return digest(s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return digest(s)
		}
	}
	return s
}

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "x" + hex.EncodeToString(sum[:12])
}

// token makes s one KV key token.
func token(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
}
