package trace

import (
	"fmt"
	"strconv"
	"strings"
)

// steps is the journey as a timeline.
func steps(j *Journey) []Step {
	var out []Step
	if r := j.Row; r != nil {
		what := "committed"
		if r.CommitTime.IsZero() {
			what = "read from the table (backfill)"
		}
		detail := fmt.Sprintf("row %s of %s", orDash("id="+r.PrimaryKey, r.PrimaryKey), orDash(r.Table, r.Table))
		if r.CommitLSN != "" {
			detail += ", commit LSN " + r.CommitLSN
		}
		out = append(out, Step{At: r.CommitTime, What: what, Detail: detail})
	}
	if f := j.Forms; f != nil {
		detail := fmt.Sprintf("FORMS seq %d, subject %s", f.Seq, f.Subject)
		if f.Gone {
			detail = fmt.Sprintf("FORMS seq %d (no longer in the stream)", f.Seq)
		}
		out = append(out, Step{At: f.Stored, What: "stored in FORMS", Detail: detail})
	}
	if d := j.Delivery; d.Deliveries > 0 || d.Attempts > 0 || d.Replays > 0 {
		var parts []string
		if d.Deliveries > 0 {
			parts = append(parts, plural(d.Deliveries, "delivery", "deliveries"))
		}
		if d.Attempts > 0 {
			parts = append(parts, plural(d.Attempts, "create attempt", "create attempts"))
		}
		if d.Failures > 0 {
			parts = append(parts, plural(d.Failures, "failed delivery", "failed deliveries"))
		}
		if d.Replays > 0 {
			parts = append(parts, plural(d.Replays, "replay", "replays"))
		}
		detail := strings.Join(parts, ", ")
		if d.LastError != "" {
			detail += "; last error: " + d.LastError
		}
		out = append(out, Step{At: d.At, What: "processed by the ticketer", Detail: detail})
	}
	switch {
	case j.Ticket != nil:
		detail := j.Ticket.Key
		if j.Ticket.Latency > 0 {
			detail += ", " + j.Ticket.Latency.String() + " after the commit"
		}
		if j.Ticket.URL != "" {
			detail += " — " + j.Ticket.URL
		}
		out = append(out, Step{At: j.Ticket.CreatedAt, What: "ticket created", Detail: detail})
	case j.DeadLetter != nil:
		dl := j.DeadLetter
		out = append(out, Step{At: dl.Stored, What: "dead-lettered", Detail: fmt.Sprintf("FORMS_DLQ seq %d: %s; replay: %s", dl.Seq, dl.ReasonText, dl.Replay)})
	case j.OnItsWay != nil:
		out = append(out, Step{What: "still on its way", Detail: j.OnItsWay.State})
	}
	return out
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

func orDash(s, cond string) string {
	if cond == "" {
		return "-"
	}
	return s
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
