package localpg

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// account is the OS user the server runs as. initdb and postgres refuse to
// run as root, so as root we switch to the "postgres" user; otherwise we run
// as ourselves and cred is nil.
type account struct {
	uid, gid int
	cred     *syscall.Credential
}

func currentAccount() (account, error) {
	if os.Geteuid() != 0 {
		return account{uid: os.Geteuid(), gid: os.Getegid()}, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		var unknown user.UnknownUserError
		if errors.As(err, &unknown) {
			return account{}, errors.New("running as root, but PostgreSQL refuses to run as root and there is no `postgres` user to run it as: " +
				"install the server package (`apt-get install postgresql`, which creates the user) or `useradd --system postgres`")
		}
		return account{}, fmt.Errorf("look up user postgres: %w", err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return account{}, fmt.Errorf("user postgres: uid %q: %w", u.Uid, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return account{}, fmt.Errorf("user postgres: gid %q: %w", u.Gid, err)
	}
	return account{uid: uid, gid: gid, cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}, nil
}

func (a account) switches() bool { return a.cred != nil }

// own hands path to the server's user; a no-op when we are that user.
func (a account) own(path string) error {
	if !a.switches() {
		return nil
	}
	return os.Chown(path, a.uid, a.gid)
}

// mkdirOwned creates dir (0700, as Postgres demands of its data directory)
// owned by the server's user. An existing directory is re-owned.
func (a account) mkdirOwned(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	return a.own(dir)
}

// checkReachable reports the first ancestor of dir that the server's user
// cannot traverse. As root every directory is reachable to us, so a 0700
// root-owned parent (t.TempDir, a home directory) only fails later inside
// postgres with an obscure "permission denied"; this names the culprit.
func (a account) checkReachable(dir string) error {
	if !a.switches() {
		return nil
	}
	for p := filepath.Clean(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		mode := fi.Mode().Perm()
		reachable := mode&0o001 != 0 ||
			(ok && int(st.Uid) == a.uid && mode&0o100 != 0) ||
			(ok && int(st.Gid) == a.gid && mode&0o010 != 0)
		if !reachable {
			return fmt.Errorf("%s (mode %#o) is not traversable by user postgres, which the server runs as: "+
				"use a directory below /tmp or `chmod o+x %s`", p, mode, p)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}
