package jirasandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/cowjacket/formjira/internal/jirasandbox/accounts"
)

// persisted is what StateFile holds: enough for a restarted demo to keep
// its tickets, its key counter (no key is ever reused), the options an
// operator added and the customers created.
type persisted struct {
	NextNum  int                `json:"nextNum"`
	Issues   []Issue            `json:"issues"`
	Options  []addedOption      `json:"options,omitempty"`
	Accounts *accounts.Snapshot `json:"accounts,omitempty"`
}

type addedOption struct {
	FieldID string `json:"fieldId"`
	Value   string `json:"value"`
}

// loadState restores StateFile; a missing file is a fresh start.
func (s *Server) loadState() error {
	b, err := os.ReadFile(s.opts.StateFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read state %s: %w", s.opts.StateFile, err)
	}
	var st persisted
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("decode state %s: %w", s.opts.StateFile, err)
	}
	for _, o := range st.Options {
		if err := s.cat.AddOption(o.FieldID, o.Value); err != nil {
			return fmt.Errorf("state %s: %w", s.opts.StateFile, err)
		}
	}
	s.added = st.Options
	s.iss.Restore(st.NextNum, st.Issues)
	if st.Accounts != nil {
		s.dir.Restore(*st.Accounts)
	}
	return nil
}

// saveState writes StateFile atomically (temp file, then rename) so a
// crash mid-write never leaves a truncated file. Writes are serialized and
// each takes its snapshot inside, so the last write holds the last state.
// Callers hold no locks.
func (s *Server) saveState() {
	s.mu.Lock()
	file, added := s.opts.StateFile, slices.Clone(s.added)
	s.mu.Unlock()
	if file == "" {
		return
	}
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	next, issues := s.iss.Snapshot()
	acc := s.dir.Snapshot()
	b, err := json.Marshal(persisted{NextNum: next, Issues: issues, Options: added, Accounts: &acc})
	if err == nil {
		tmp := file + ".tmp"
		if err = os.MkdirAll(filepath.Dir(tmp), 0o755); err == nil {
			if err = os.WriteFile(tmp, b, 0o644); err == nil {
				err = os.Rename(tmp, file)
			}
		}
	}
	if err != nil {
		s.log.Error("jira sandbox save state", "file", file, "err", err)
	}
}
