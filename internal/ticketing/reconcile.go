package ticketing

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cowjacket/formjira/internal/mapping"
	"github.com/cowjacket/formjira/internal/stream"
)

// reconcile looks in Jira for the tickets of claims whose outcome is
// unknown, by what the create itself may have carried: the hash label, or,
// for a JSM request whose labels follow in a later edit, the record hash in
// its description. Which one a JSM create carried depends on the request
// type's fields when it was sent, which may have changed since, so JSM
// searches both. It searches (JQL), and reads the project's issues created
// from the claim's KeyFrom directly by key, which sees a create at once
// where search may lag for minutes. Found: the ticket exists, record it
// (and add the labels it lacks). Not found: no proof (a read can miss an
// issue moved away, search lags), so trust it only once the claim's
// RecheckAfter (JIRA_TIMEOUT + RECONCILE_DELAY) has passed, then take the
// claim over.
func (p *Engine) reconcile(ctx context.Context, ws []*work) error {
	// The window is judged by when the search began: a ticket made while
	// a slow search ran must not count as none.
	now := time.Now()
	jsm := p.cfg.Mapping.Mode() == mapping.ModeJSM
	labels := make([]string, 0, len(ws))
	for _, w := range ws {
		labels = append(labels, w.req.HashLabel)
	}
	byLabel, err := p.cfg.Jira.FindByLabels(ctx, labels)
	if err != nil {
		return err
	}
	// The text search is one query a hash: only for those the labels missed.
	var hashes []string
	for _, w := range ws {
		if jsm && len(byLabel[w.req.HashLabel]) == 0 {
			hashes = append(hashes, w.hash)
		}
	}
	byText := map[string][]string{}
	if len(hashes) > 0 {
		if byText, err = p.cfg.Jira.FindByText(ctx, p.cfg.Mapping.Project(), hashes); err != nil {
			return err
		}
	}
	for _, keys := range byLabel {
		p.seeKeys(keys...)
	}
	read, err := p.readSince(ctx, ws, byLabel, byText, jsm)
	if err != nil {
		return err
	}
	for _, w := range ws {
		keys, labelled := byLabel[w.req.HashLabel], true
		if len(keys) == 0 {
			keys, labelled = byText[w.hash], false
		}
		if f, ok := read[w.hash]; len(keys) == 0 && ok {
			keys, labelled = []string{f.key}, f.labelled
		}
		if len(keys) > 0 {
			if len(keys) > 1 {
				p.log.Error("more than one ticket carries the record hash", "hash", w.hash, "jira_keys", keys)
			}
			if labelled {
				p.recordCreated(ctx, w, keys[0], w.recRev, false)
			} else {
				p.recordWithLabelsToAdd(ctx, w, keys[0], w.recRev)
			}
			w.reconcile = false
			continue
		}
		if now.Before(w.rec.RecheckAfter) {
			// Jira's search may not show a recent create yet: look again later.
			w.wait = w.rec.RecheckAfter
			p.log.Debug("claim too young to trust an empty search", "hash", w.hash, "stream_seq", w.it.Seq, "recheck_after", w.rec.RecheckAfter)
			continue
		}
		rev, err := p.cfg.Records.Put(ctx, w.hash, p.claimRecord(w, time.Now()), w.recRev)
		if err != nil {
			if !errors.Is(err, stream.ErrConflict) {
				p.transient(w, err, 0)
			}
			continue // conflict: look again on the next pass
		}
		p.log.Info("taking over a claim whose attempt created nothing", "hash", w.hash, "stream_seq", w.it.Seq, "attempt", w.rec.Attempt)
		w.rev, w.reconcile = rev, false
	}
	return nil
}

// found is a ticket read by key: whether it carries the hash label.
type found struct {
	key      string
	labelled bool
}

// walkWindows bounds the read by key: 100 keys a call.
const walkWindows = 5

// readSince reads, for the works that search did not find, the project's
// issues numbered from their claims' KeyFrom (bulkfetch, up to 100 keys a
// call, missing keys simply absent), window after window until one holds
// no issue: hash → key of the issues carrying a work's hash label, or its
// record hash in the text (jsm: a request before its label edit).
func (p *Engine) readSince(ctx context.Context, ws []*work, byLabel, byText map[string][]string, jsm bool) (map[string]found, error) {
	from, want := 0, map[string]*work{}
	for _, w := range ws {
		found := len(byLabel[w.req.HashLabel]) > 0 || len(byText[w.hash]) > 0
		if found || w.rec == nil || w.rec.KeyFrom <= 0 {
			continue
		}
		want[w.hash] = w
		if from == 0 || w.rec.KeyFrom < from {
			from = w.rec.KeyFrom
		}
	}
	out := map[string]found{}
	if len(want) == 0 {
		return out, nil
	}
	project := p.cfg.Mapping.Project()
	for win := range walkWindows {
		keys := make([]string, 100)
		for i := range keys {
			keys[i] = project + "-" + strconv.Itoa(from+win*100+i)
		}
		issues, err := p.cfg.Jira.IssuesByKey(ctx, keys)
		if err != nil {
			return nil, err
		}
		for _, is := range issues {
			p.seeKeys(is.Key)
			text := strings.ToLower(is.Text)
			for hash, w := range want {
				if labelled := slices.Contains(is.Labels, w.req.HashLabel); labelled || jsm && strings.Contains(text, hash) {
					out[hash] = found{is.Key, labelled}
				}
			}
		}
		if len(issues) == 0 || len(out) == len(want) {
			break
		}
	}
	return out, nil
}

// keyFrom is the lowest issue number a create sent now may get (0:
// unknown).
func (p *Engine) keyFrom() int {
	if !p.floorKnown.Load() {
		return 0
	}
	return int(p.floor.Load()) + 1
}

// seeKeys raises the key floor to the highest of keys (of the project).
func (p *Engine) seeKeys(keys ...string) {
	prefix := p.cfg.Mapping.Project() + "-"
	for _, k := range keys {
		n, err := strconv.Atoi(strings.TrimPrefix(k, prefix))
		if err != nil || !strings.HasPrefix(k, prefix) {
			continue
		}
		for {
			cur := p.floor.Load()
			if int64(n) <= cur || p.floor.CompareAndSwap(cur, int64(n)) {
				break
			}
		}
		p.floorKnown.Store(true)
	}
}

// knowFloor fetches a key floor before the first create, from search: it
// lags, so its newest key is no higher than the true one, which is what a
// floor needs. Without one, a create's unknown outcome waits for the
// reconcile window.
func (p *Engine) knowFloor(ctx context.Context) {
	if p.floorKnown.Load() {
		return
	}
	key, err := p.cfg.Jira.LatestKey(ctx, p.cfg.Mapping.Project())
	switch {
	case err != nil:
		p.log.Debug("no key floor yet", "err", err)
	case key == "":
		p.floorKnown.Store(true) // an empty project: every key is above 0
	default:
		p.seeKeys(key)
	}
}
