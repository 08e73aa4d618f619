package mapping

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cowjacket/formjira/internal/form"
	"github.com/cowjacket/formjira/internal/ticket"
	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

// zoneYAML maps one column to a date and a datetime field, in Berlin or
// (zone "") in UTC, the default.
func zoneYAML(zone string) string {
	tz := ""
	if zone != "" {
		tz = ", timezone: " + zone
	}
	return `
mode: platform
api_version: 2
project: CP
issue_type: "10003"
summary: 'Phone request: {{col "newusername"}}'
fields:
  - {column: at, field: customfield_6, type: date` + tz + `}
  - {column: at, field: customfield_7, type: datetime` + tz + `}
`
}

func zoneMeta() *ticket.Meta {
	return &ticket.Meta{Fields: map[string]ticket.FieldMeta{
		"summary":       {ID: "summary", Name: "Summary", Type: "string", Required: true},
		"labels":        {ID: "labels", Name: "Labels", Type: "array", Items: "string"},
		"customfield_6": {ID: "customfield_6", Name: "Needed by", Type: "date"},
		"customfield_7": {ID: "customfield_7", Name: "Submitted", Type: "datetime"},
	}}
}

// TestTimezone: with timezone set, an instant's date is the date there
// (23:30 UTC is the next day in Berlin) and a wall clock without an offset
// (a timestamp column, an HTML datetime-local value) is read as Berlin's;
// without it both are UTC, as before.
func TestTimezone(t *testing.T) {
	late := time.Date(2025, 10, 28, 23, 30, 0, 0, time.UTC) // Berlin: CET, +01:00
	ts := func(pgType string, at time.Time) *formsv1.Column {
		return &formsv1.Column{Name: "at", PgType: pgType, Value: &formsv1.Value{Kind: &formsv1.Value_Timestamp{Timestamp: timestamppb.New(at)}}}
	}
	text := func(s string) *formsv1.Column {
		return &formsv1.Column{Name: "at", PgType: "text", Value: form.Text(s)}
	}
	for _, tc := range []struct {
		name, zone     string
		col            *formsv1.Column
		date, datetime string
	}{
		{"timestamptz in Berlin", "Europe/Berlin", ts("timestamptz", late), "2025-10-29", "2025-10-29T00:30:00.000+0100"},
		{"timestamptz in UTC (no timezone)", "", ts("timestamptz", late), "2025-10-28", "2025-10-28T23:30:00.000+0000"},
		{"timestamp (a wall clock) in Berlin", "Europe/Berlin", ts("timestamp", late), "2025-10-28", "2025-10-28T23:30:00.000+0100"},
		{"timestamp in UTC", "", ts("timestamp", late), "2025-10-28", "2025-10-28T23:30:00.000+0000"},
		{"datetime-local text in Berlin, summer time", "Europe/Berlin", text("2025-07-01T09:30"), "", "2025-07-01T09:30:00.000+0200"},
		{"text with an offset, shown in Berlin", "Europe/Berlin", text("2025-10-28 09:30:00+02"), "", "2025-10-28T08:30:00.000+0100"},
		{"a date column is a date anywhere", "Pacific/Kiritimati", &formsv1.Column{Name: "at", PgType: "date", Value: &formsv1.Value{Kind: &formsv1.Value_Date{Date: "2025-10-28"}}}, "2025-10-28", "2025-10-28T00:00:00.000+1400"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := mustParse(t, zoneYAML(tc.zone))
			ev := saraWith(t, nil)
			ev.Columns = append(ev.Columns, tc.col)
			req, err := m.Build(ev, zoneMeta())
			if tc.date == "" { // text is no date: the date field refuses it, naming it
				if err == nil || !strings.Contains(err.Error(), `column "at" → customfield_6`) {
					t.Fatalf("date from %v: err %v, want the date field refused", tc.col.GetValue(), err)
				}
				m = mustParse(t, strings.Replace(zoneYAML(tc.zone), "  - {column: at, field: customfield_6", "  # ", 1))
				if req, err = m.Build(ev, zoneMeta()); err != nil {
					t.Fatal(err)
				}
			} else if err != nil {
				t.Fatal(err)
			} else if got, _ := json.Marshal(req.Fields["customfield_6"]); string(got) != `"`+tc.date+`"` {
				t.Errorf("date = %s, want %q", got, tc.date)
			}
			if got, _ := json.Marshal(req.Fields["customfield_7"]); string(got) != `"`+tc.datetime+`"` {
				t.Errorf("datetime = %s, want %q", got, tc.datetime)
			}
		})
	}
}

// TestTimezoneInCheck: ticketer check's table says where dates are taken.
func TestTimezoneInCheck(t *testing.T) {
	tbl := mustParse(t, zoneYAML("Europe/Berlin")).table(zoneMeta())
	if !strings.Contains(tbl, "date, in Europe/Berlin") || !strings.Contains(tbl, "datetime, in Europe/Berlin") {
		t.Errorf("check table without the timezone:\n%s", tbl)
	}
}

func TestTimezoneRefused(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{"{column: at, field: customfield_6, type: date, timezone: Mars/Olympus}", `timezone: "Mars/Olympus" is not an IANA time zone`},
		{"{column: at, field: customfield_6, type: date, timezone: Local}", `timezone: "Local" is not a time zone`},
		{"{column: at, field: customfield_6, type: date, timezone: ''}", `timezone: "" is not a time zone`},
		{"{column: at, field: customfield_1, type: text, timezone: UTC}", "timezone: only for date and datetime"},
	} {
		yml := strings.Replace(zoneYAML(""), "{column: at, field: customfield_6, type: date}", tc.line, 1)
		_, err := Parse([]byte(yml))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `fields[0] (column "at")`) {
			t.Errorf("%s: err %v, want %q naming fields[0]", tc.line, err, tc.want)
		}
	}
}

// TestTimezoneAtSummerTime: a wall clock the change skips (02:30 on 30
// March in Berlin) or repeats (02:30 on 26 October) is read in one of the
// two offsets around the change, never refused or shifted further.
func TestTimezoneAtSummerTime(t *testing.T) {
	m := mustParse(t, strings.Replace(zoneYAML("Europe/Berlin"), "  - {column: at, field: customfield_6", "  # ", 1))
	for _, tc := range []struct {
		wall   string
		either [2]string
	}{
		{"2025-03-30T02:30", [2]string{"2025-03-30T03:30:00.000+0200", "2025-03-30T01:30:00.000+0100"}},
		{"2025-10-26T02:30", [2]string{"2025-10-26T02:30:00.000+0200", "2025-10-26T02:30:00.000+0100"}},
	} {
		for _, col := range []*formsv1.Column{
			{Name: "at", PgType: "text", Value: form.Text(tc.wall)},
			{Name: "at", PgType: form.PgTimestamp, Value: &formsv1.Value{Kind: &formsv1.Value_Timestamp{Timestamp: timestamppb.New(mustWall(t, tc.wall))}}},
		} {
			ev := saraWith(t, nil)
			ev.Columns = append(ev.Columns, col)
			req, err := m.Build(ev, zoneMeta())
			if err != nil {
				t.Fatalf("%s (%s): %v", tc.wall, col.GetPgType(), err)
			}
			if got := req.Fields["customfield_7"]; got != tc.either[0] && got != tc.either[1] {
				t.Errorf("%s (%s) = %v, want one of %v", tc.wall, col.GetPgType(), got, tc.either)
			}
		}
	}
}

// mustWall is a wall clock as capture carries a timestamp column: in UTC.
func mustWall(t *testing.T, s string) time.Time {
	t.Helper()
	w, err := time.Parse("2006-01-02T15:04", s)
	if err != nil {
		t.Fatal(err)
	}
	return w
}
