package form

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"

	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

// SchemaSQL creates public.form_submissions as the support web form writes it
// (a copy of the shared fixture, so the repository needs nothing outside it).
//
//go:embed fixtures/schema.sql
var SchemaSQL string

//go:embed fixtures/sample-submissions.jsonl
var samplesJSONL []byte

// FormColumns are the form table's columns after id, in table order, with
// their PostgreSQL types.
var FormColumns = []struct{ Name, Type string }{
	{"newusername", "text"},
	{"samplename", "text"},
	{"phonenumber", "text"},
	{"departmentname", "text"},
	{"job", "text"},
	{"emailaddress", "text"},
	{"costcenter", "text"},
	{"telephonelinesandinstallations", "text"},
	{"handsetsandheadsets", "text"},
	{"timeframe", "text"},
	{"dateneededby", "date"},
	{"approximateendingdate", "date"},
	{"Comments", "text"},
	{"createdat", "date"},
}

// Sample is one realistic submission: column → value, nil for NULL.
type Sample map[string]*string

// Samples returns the 200 sample submissions in file order. Lines 51, 121 and
// 200 repeat lines 6, 18 and 34: double clicks that must become one ticket.
func Samples() ([]Sample, error) {
	var out []Sample
	sc := bufio.NewScanner(bytes.NewReader(samplesJSONL))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for line := 1; sc.Scan(); line++ {
		var s Sample
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			return nil, fmt.Errorf("sample line %d: %w", line, err)
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

// Columns is the sample as the event's columns (without id), typed as the
// table types them, so its hash equals the hash of the captured row.
func (s Sample) Columns() []*formsv1.Column {
	cols := make([]*formsv1.Column, 0, len(FormColumns))
	for _, fc := range FormColumns {
		v := Null()
		if p := s[fc.Name]; p != nil {
			if fc.Type == "date" {
				v = &formsv1.Value{Kind: &formsv1.Value_Date{Date: *p}}
			} else {
				v = Text(*p)
			}
		}
		cols = append(cols, &formsv1.Column{Name: fc.Name, PgType: fc.Type, Value: v})
	}
	return cols
}

// InsertSQL is a parameterised INSERT of every form column; Args gives the
// matching arguments (nil for NULL, which createdat turns into its default
// only when omitted, so callers wanting the default leave it out of the row).
func InsertSQL(table string) string {
	names := make([]string, len(FormColumns))
	params := make([]string, len(FormColumns))
	for i, c := range FormColumns {
		names[i] = `"` + c.Name + `"`
		params[i] = fmt.Sprintf("$%d", i+1)
		if c.Type == "date" {
			params[i] += "::date"
		}
	}
	return fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", table, strings.Join(names, ", "), strings.Join(params, ", "))
}

// Args are the sample's values in FormColumns order for InsertSQL.
func (s Sample) Args() []any {
	args := make([]any, len(FormColumns))
	for i, c := range FormColumns {
		if p := s[c.Name]; p != nil {
			args[i] = *p
		}
	}
	return args
}
