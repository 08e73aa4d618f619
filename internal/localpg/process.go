package localpg

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

func (s *Server) prepareCmd(cmd *exec.Cmd, logf *os.File) {
	if s.log != nil {
		cmd.Stdout = io.MultiWriter(logf, s.log)
		// Children inherit the pipe; don't let a straggler hang Wait.
		cmd.WaitDelay = 5 * time.Second
	} else {
		cmd.Stdout = logf
	}
	cmd.Stderr = cmd.Stdout
	cmd.Dir = s.workDir
	cmd.Env = append(cleanEnv(), "LC_ALL=C")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.acct.cred}
}

// cleanEnv drops PG* variables: PGDATA, PGPORT and friends from the caller's
// shell must not steer the private server.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") && !strings.HasPrefix(kv, "LC_") {
			env = append(env, kv)
		}
	}
	return env
}

// startLocked starts postgres and waits until it accepts connections.
// Failures that a retry can cure (port taken between picking and binding,
// shared memory of a just-killed server not yet released) are retried.
func (s *Server) startLocked(ctx context.Context, autoPort bool) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
		if autoPort && (s.port == 0 || attempt > 0) {
			if s.port, err = freePort(); err != nil {
				return err
			}
		}
		var retry bool
		if retry, err = s.startOnce(ctx); err == nil || !retry {
			return err
		}
	}
	return err
}

func (s *Server) startOnce(ctx context.Context) (retry bool, err error) {
	if err := s.acct.mkdirOwned(s.sockDir); err != nil {
		return false, err
	}
	if err := s.writeConf(); err != nil {
		return false, err
	}
	logf, offset, err := s.openLog()
	if err != nil {
		return false, err
	}
	cmd := exec.Command(s.bin.postgres, "-D", s.dataDir)
	s.prepareCmd(cmd, logf)
	// Own process group: a terminal's Ctrl-C reaches only the test process,
	// whose death then kills postgres via Pdeathsig (not a second, racing
	// SIGINT), and Kill can signal postgres with all its children.
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	p, err := startProcess(cmd, logf)
	if err != nil {
		logf.Close()
		return false, fmt.Errorf("start postgres: %w", err)
	}
	if err := s.waitReady(ctx, p); err != nil {
		p.kill()
		tail := s.logTail(offset)
		retry = strings.Contains(tail, "could not bind") ||
			strings.Contains(tail, "still in use") ||
			strings.Contains(tail, "lock file")
		return retry, fmt.Errorf("postgres on port %d: %w; %s", s.port, err, tail)
	}
	s.proc = p
	return false, nil
}

func (s *Server) waitReady(ctx context.Context, p *process) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	dsn := s.DSN("postgres")
	for {
		select {
		case <-p.done: // before a connect: another server may hold the port
			return fmt.Errorf("exited before accepting connections (%v)", p.err)
		default:
		}
		attempt, cancelAttempt := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.Connect(attempt, dsn)
		if err == nil {
			err = s.isOurs(attempt, conn)
			conn.Close(ctx)
			cancelAttempt()
			return err
		}
		cancelAttempt()
		select {
		case <-p.done:
			return fmt.Errorf("exited before accepting connections (%v)", p.err)
		case <-ctx.Done():
			return fmt.Errorf("not accepting connections: %w (last: %v)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// isOurs checks that the server answering on the port runs on our data
// directory: another PostgreSQL on that port (a second demo) must not be
// taken for ours while ours fails to bind.
func (s *Server) isOurs(ctx context.Context, conn *pgx.Conn) error {
	var dir string
	if err := conn.QueryRow(ctx, "SHOW data_directory").Scan(&dir); err != nil {
		return fmt.Errorf("read data_directory: %w", err)
	}
	want, _ := filepath.EvalSymlinks(s.dataDir)
	got, _ := filepath.EvalSymlinks(dir)
	if got != want {
		return fmt.Errorf("port %d answers as another PostgreSQL (data directory %s): choose another port", s.port, dir)
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// process is a started postmaster.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once reaped
	err  error         // Wait's result, valid after done
}

// startProcess starts cmd from a goroutine locked to its OS thread until the
// child exits: Linux sends Pdeathsig when the *thread* that forked the child
// exits, and an unlocked Go thread may be retired at any time.
func startProcess(cmd *exec.Cmd, closeAfter io.Closer) (*process, error) {
	p := &process{cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		closeAfter.Close()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

// kill SIGKILLs the whole process group (postmaster and backends) and
// waits for it to be gone: a backend still attached to shared memory makes
// the next start fail ("pre-existing shared memory block is still in use").
// The wait is bounded because orphaned zombies count as group members until
// init reaps them; startLocked retries that failure anyway.
func (p *process) kill() {
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-p.done
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
		if syscall.Kill(-pgid, 0) == syscall.ESRCH {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
