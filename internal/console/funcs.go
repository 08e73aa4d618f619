package console

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/cowjacket/formjira/internal/deadletters"
	"github.com/cowjacket/formjira/internal/stats"
	"github.com/cowjacket/formjira/internal/table"
	"github.com/cowjacket/formjira/internal/trace"
)

// Widths of cut cells in the console's tables (the entry page and the API
// show every value whole).
const (
	cellName   = 40
	cellReason = 160
)

func funcs(jiraURL string) template.FuncMap {
	return template.FuncMap{
		"cut":   table.Cut,
		"short": deadletters.ShortHash,
		"or":    cmp.Or[string],
		"who":   deadletters.Who,
		"when": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.UTC().Format("2006-01-02 15:04:05")
		},
		"ago": func(t time.Time) string {
			if t.IsZero() {
				return "never"
			}
			return ago(time.Since(t)) + " ago"
		},
		"bytes":      humanBytes,
		"ubytes":     func(n uint64) string { return humanBytes(int64(n)) },
		"dur":        func(d time.Duration) string { return trace.Millis(d).String() },
		"ms":         func(f float64) string { return fmt.Sprintf("%.0f ms", f) },
		"browse":     func(key string) string { return strings.TrimRight(jiraURL, "/") + "/browse/" + key },
		"reason":     func(code string) string { return deadletters.ReasonTitles[code] },
		"chart":      chart,
		"cellName":   func() int { return cellName },
		"cellReason": func() int { return cellReason },
		"upper":      func(s string) string { return strings.ToUpper(strings.ReplaceAll(s, "_", " ")) },
	}
}

func ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < time.Hour:
		return d.Round(time.Minute).String()
	}
	return d.Round(time.Hour).String()
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func prettyJSON(b []byte) string {
	var out bytes.Buffer
	if json.Indent(&out, b, "", "  ") != nil {
		return string(b)
	}
	return out.String()
}

func rawJSON(b []byte) json.RawMessage {
	if json.Valid(b) {
		return b
	}
	s, _ := json.Marshal(string(b))
	return s
}

// bar is one day of the chart.
type bar struct {
	X, W, Y, H, DY, DH float64
	Label, Title       string
	Created, Dead      int64
}

// chartView is the server-rendered SVG of the last days: tickets created
// (and, in red, dead letters) per day.
type chartView struct {
	Width, Height, Base float64
	Bars                []bar
	Max                 int64
}

func chart(days []stats.DayStats) chartView {
	const w, h, base = 700.0, 180.0, 150.0
	c := chartView{Width: w, Height: h, Base: base}
	for _, d := range days {
		c.Max = max(c.Max, d.Created+d.DeadLettered)
	}
	scale := 0.0
	if c.Max > 0 {
		scale = (base - 10) / float64(c.Max)
	}
	slot := w / float64(max(len(days), 1))
	for i, d := range days {
		b := bar{X: float64(i)*slot + slot*0.15, W: slot * 0.7, Created: d.Created, Dead: d.DeadLettered, Label: d.Day[5:]}
		b.H = float64(d.Created) * scale
		b.Y = base - b.H
		b.DH = float64(d.DeadLettered) * scale
		b.DY = b.Y - b.DH
		b.Title = fmt.Sprintf("%s: %d created, %d dead-lettered, commit→ticket p50 %s", d.Day, d.Created, d.DeadLettered, d.P50.Round(time.Millisecond))
		c.Bars = append(c.Bars, b)
	}
	return c
}
