package form

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"

	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

// hashDomain versions the canonical encoding: changing the encoding changes
// every hash, which would re-ticket everything, so it changes only with it.
const hashDomain = "cowjacket.forms.v1/hash\n"

// HashFields resolves which columns a record hash covers: the configured list
// when one is given, else every column except the primary key (the surrogate
// id differs between two clicks of "submit"; everything else does not).
func HashFields(columns []*formsv1.Column, primaryKey []string, configured []string) []string {
	var fields []string
	if len(configured) > 0 {
		fields = slices.Clone(configured)
	} else {
		for _, c := range columns {
			if !slices.Contains(primaryKey, c.GetName()) {
				fields = append(fields, c.GetName())
			}
		}
	}
	slices.Sort(fields)
	return slices.Compact(fields)
}

// Hash is the record hash: lowercase hex SHA-256 over
//
//	"cowjacket.forms.v1/hash\n" then, for each field in byte order of its
//	name whose value is not NULL: len(name) ":" name len(value) ":" value
//
// with lengths in decimal bytes and value its Canonical text. Column order
// does not matter, and a NULL column hashes like an absent one, so adding a
// nullable column to the table does not change the hash of existing rows.
func Hash(columns []*formsv1.Column, fields []string) string {
	values := make(map[string]string, len(columns))
	for _, c := range columns {
		if s, ok := Canonical(c.GetValue()); ok {
			values[c.GetName()] = s
		}
	}
	sorted := slices.Clone(fields)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)

	h := sha256.New()
	buf := []byte(hashDomain)
	for _, name := range sorted {
		v, ok := values[name]
		if !ok {
			continue
		}
		buf = strconv.AppendInt(buf, int64(len(name)), 10)
		buf = append(buf, ':')
		buf = append(buf, name...)
		buf = strconv.AppendInt(buf, int64(len(v)), 10)
		buf = append(buf, ':')
		buf = append(buf, v...)
	}
	h.Write(buf)
	return hex.EncodeToString(h.Sum(nil))
}
