package form

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"slices"
	"strconv"
	"time"

	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

// HashPlan is Hash prepared for one column layout: which columns the hash
// covers, in the order it reads them, resolved once (per pgoutput Relation
// message, per table scan) instead of per row. It computes exactly Hash,
// with its SHA-256 state and buffer reused; it is not safe for concurrent
// use.
type HashPlan struct {
	fields []string // sorted, deduplicated: the event's hash_fields
	names  []string // the name fields[i] hashes under
	index  [][]int  // column indexes of fields[i]'s names in the layout (present ones)
	h      hash.Hash
	buf    []byte
	val    []byte
	sum    [sha256.Size]byte
	hex    [2 * sha256.Size]byte
}

// NewHashPlan prepares the hash of rows whose columns are named columns
// (in that order), with HashFields' choice of fields.
func NewHashPlan(columns, primaryKey, configured []string) *HashPlan {
	var fields []string
	if len(configured) > 0 {
		fields = slices.Clone(configured)
	} else {
		for _, c := range columns {
			if !slices.Contains(primaryKey, c) {
				fields = append(fields, c)
			}
		}
	}
	fields = sortFields(fields)
	p := &HashPlan{fields: fields, names: make([]string, len(fields)), index: make([][]int, len(fields)), h: sha256.New()}
	for i, f := range fields {
		p.names[i] = FieldName(f)
		for _, n := range FieldNames(f) {
			if j := slices.Index(columns, n); j >= 0 {
				p.index[i] = append(p.index[i], j)
			}
		}
	}
	return p
}

// Fields are the columns the hash covers, sorted (shared: do not modify).
func (p *HashPlan) Fields() []string { return p.fields }

// Hash is Hash(columns, p.Fields()) for columns in the plan's layout.
func (p *HashPlan) Hash(columns []*formsv1.Column) string {
	b := append(p.buf[:0], hashDomain...)
	for i, name := range p.names {
		var val []byte
		ok := false
		for _, j := range p.index[i] {
			if j < len(columns) {
				if val, ok = appendCanonical(p.val[:0], columns[j].GetValue()); ok {
					break
				}
			}
		}
		if val != nil {
			p.val = val
		}
		if !ok {
			continue // NULL hashes like an absent column
		}
		b = strconv.AppendInt(b, int64(len(name)), 10)
		b = append(b, ':')
		b = append(b, name...)
		b = strconv.AppendInt(b, int64(len(val)), 10)
		b = append(b, ':')
		b = append(b, val...)
	}
	p.buf = b
	p.h.Reset()
	p.h.Write(b)
	hex.Encode(p.hex[:], p.h.Sum(p.sum[:0]))
	return string(p.hex[:])
}

// appendCanonical appends Canonical(v); ok is false for NULL and absent.
func appendCanonical(b []byte, v *formsv1.Value) ([]byte, bool) {
	if v == nil {
		return b, false
	}
	switch k := v.Kind.(type) {
	case *formsv1.Value_Text:
		return append(b, k.Text...), true
	case *formsv1.Value_Integer:
		return strconv.AppendInt(b, k.Integer, 10), true
	case *formsv1.Value_Number:
		return strconv.AppendFloat(b, k.Number, 'g', -1, 64), true
	case *formsv1.Value_Decimal:
		return append(b, k.Decimal...), true
	case *formsv1.Value_Boolean:
		return strconv.AppendBool(b, k.Boolean), true
	case *formsv1.Value_Date:
		return append(b, k.Date...), true
	case *formsv1.Value_Timestamp:
		return k.Timestamp.AsTime().UTC().AppendFormat(b, time.RFC3339Nano), true
	case *formsv1.Value_Raw:
		return append(b, k.Raw...), true
	}
	return b, false
}
