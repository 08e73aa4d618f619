package form

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"

	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

// hashDomain versions the canonical encoding: changing the encoding changes
// every hash, which would re-ticket everything, so it changes only with it.
const hashDomain = "cowjacket.forms.v1/hash\n"

// HashFields resolves which columns a record hash covers: the configured list
// when one is given, else every column except the primary key (the surrogate
// id differs between two clicks of "submit"; everything else does not).
//
// A configured field may name a column's earlier and later names,
// "emailaddress|email": it hashes under its first name, with the value of
// the first of them the row holds (not NULL), so a renamed column keeps
// every hash, and rows still in the WAL under the old name are read too.
func HashFields(columns []*formsv1.Column, primaryKey []string, configured []string) []string {
	if len(configured) > 0 {
		return sortFields(slices.Clone(configured))
	}
	var fields []string
	for _, c := range columns {
		if !slices.Contains(primaryKey, c.GetName()) {
			fields = append(fields, c.GetName())
		}
	}
	return sortFields(fields)
}

// FieldNames are a hash field's names: its own, then its other names.
func FieldNames(field string) []string { return strings.Split(field, "|") }

// FieldName is the name a field hashes under: its first.
func FieldName(field string) string { name, _, _ := strings.Cut(field, "|"); return name }

// sortFields orders fields by the names they hash under, without repeats.
func sortFields(fields []string) []string {
	slices.SortStableFunc(fields, func(a, b string) int { return strings.Compare(FieldName(a), FieldName(b)) })
	return slices.CompactFunc(fields, func(a, b string) bool { return FieldName(a) == FieldName(b) })
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
	sorted := sortFields(slices.Clone(fields))

	h := sha256.New()
	buf := []byte(hashDomain)
	for _, field := range sorted {
		var v string
		ok := false
		for _, n := range FieldNames(field) {
			if v, ok = values[n]; ok {
				break
			}
		}
		if !ok {
			continue
		}
		name := FieldName(field)
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
