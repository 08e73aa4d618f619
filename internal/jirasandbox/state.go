package jirasandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// persisted is what StateFile holds: enough for a restarted demo to keep
// its tickets, its key counter (no key is ever reused) and the options an
// operator added.
type persisted struct {
	NextNum int           `json:"nextNum"`
	Issues  []*Issue      `json:"issues"`
	Options []addedOption `json:"options,omitempty"`
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
		if err := s.cat.addOption(o.FieldID, o.Value); err != nil {
			return fmt.Errorf("state %s: %w", s.opts.StateFile, err)
		}
	}
	s.added = st.Options
	s.issues = st.Issues
	s.nextNum = max(s.nextNum, st.NextNum)
	return nil
}

// saveState writes StateFile atomically (temp file, then rename) so a
// crash mid-write never leaves a truncated file. Callers hold s.mu.
func (s *Server) saveState() {
	if s.opts.StateFile == "" {
		return
	}
	b, err := json.Marshal(persisted{NextNum: s.nextNum, Issues: s.issues, Options: s.added})
	if err == nil {
		tmp := s.opts.StateFile + ".tmp"
		if err = os.MkdirAll(filepath.Dir(tmp), 0o755); err == nil {
			if err = os.WriteFile(tmp, b, 0o644); err == nil {
				err = os.Rename(tmp, s.opts.StateFile)
			}
		}
	}
	if err != nil {
		s.log.Error("jira sandbox save state", "file", s.opts.StateFile, "err", err)
	}
}
