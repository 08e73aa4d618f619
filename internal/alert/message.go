package alert

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// fmtDuration prints 10m rather than 10m0s, for subjects people read.
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

const stamp = "2006-01-02 15:04:05 MST"

func (s *state) digestMessage(now time.Time) message {
	d := s.digest
	reasons := make([]Alert, 0, len(d.reasons))
	for _, r := range d.reasons {
		reasons = append(reasons, *r)
	}
	sort.Slice(reasons, func(i, j int) bool {
		if reasons[i].Count != reasons[j].Count {
			return reasons[i].Count > reasons[j].Count
		}
		return reasons[i].Summary < reasons[j].Summary
	})

	subject := fmt.Sprintf("%s %s in the last %s", s.a.cfg.SubjectPrefix,
		plural(d.total, "dead letter", "dead letters"), fmtDuration(s.a.cfg.DigestInterval))
	var b strings.Builder
	fmt.Fprintf(&b, "%s dead-lettered between %s and %s (total %d).\n\n",
		plural(d.total, "event was", "events were"), d.since.UTC().Format(stamp), now.UTC().Format(stamp), d.total)
	fmt.Fprintf(&b, "Top reasons (count, reason):\n")
	for i, r := range reasons {
		if i == topReasons {
			rest := 0
			for _, o := range reasons[i:] {
				rest += o.Count
			}
			fmt.Fprintf(&b, "  … and %s (%s)\n", plural(len(reasons)-i, "more reason", "more reasons"), plural(rest, "dead letter", "dead letters"))
			break
		}
		fmt.Fprintf(&b, "%6d  %s\n", r.Count, r.Summary)
		if r.Detail != "" {
			fmt.Fprintf(&b, "        e.g. %s\n", oneLine(r.Detail, 300))
		}
	}
	b.WriteString("\nInspect: ticketer dlq list / ticketer dlq show SEQ\nReplay:  ticketer dlq replay SEQ… | --all\n")
	s.footer(&b)
	return message{subject: subject, body: b.String(), alerts: reasons}
}

func (s *state) kindMessage(al Alert, count int, since time.Time) message {
	headline := al.headline()
	subject := s.a.cfg.SubjectPrefix + " "
	if al.Resolved {
		subject += "RESOLVED: "
	}
	subject += headline
	if !al.Resolved && count > 1 {
		subject += fmt.Sprintf(" (%d times since %s)", count, since.UTC().Format("15:04 MST"))
	}

	var b strings.Builder
	if al.Resolved {
		fmt.Fprintf(&b, "Resolved at %s: %s\n", al.At.UTC().Format(stamp), headline)
		if count > 0 {
			fmt.Fprintf(&b, "It fired %s more since the previous message (repeats within %s are folded).\n",
				plural(count, "time", "times"), fmtDuration(s.a.cfg.MinInterval))
		}
	} else {
		fmt.Fprintf(&b, "%s\n", headline)
		if count <= 1 {
			fmt.Fprintf(&b, "At %s.\n", al.At.UTC().Format(stamp))
		} else {
			fmt.Fprintf(&b, "Seen %d times between %s and %s (repeats within %s are folded into one message).\n",
				count, since.UTC().Format(stamp), al.At.UTC().Format(stamp), fmtDuration(s.a.cfg.MinInterval))
		}
	}
	if al.Detail != "" {
		fmt.Fprintf(&b, "\n%s\n", al.Detail)
	}
	if len(al.Fields) > 0 {
		keys := make([]string, 0, len(al.Fields))
		for k := range al.Fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString("\n")
		for _, k := range keys {
			fmt.Fprintf(&b, "%s: %s\n", k, al.Fields[k])
		}
	}
	s.footer(&b)
	al.Count = max(count, 1)
	return message{subject: subject, body: b.String(), alerts: []Alert{al}}
}

// footer reports losses since the previous message, so a storm or a sink
// outage is never silent.
func (s *state) footer(b *strings.Builder) {
	if n := s.a.dropped.Swap(0); n > 0 {
		s.a.droppedOnce.Store(false)
		fmt.Fprintf(b, "\nNote: %d alerts dropped (alert queue full).\n", n)
	}
	if n := s.a.failed.Swap(0); n > 0 {
		fmt.Fprintf(b, "\nNote: %d earlier alert messages could not be delivered; see the service log.\n", n)
	}
}

func oneLine(s string, limit int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > limit {
		s = string(r[:limit]) + "…"
	}
	return s
}
