package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cowjacket/formjira/internal/form"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
)

const pgBin = "/usr/lib/postgresql/15/bin"

func pgTool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name); len(m) > 0 {
		return m[len(m)-1]
	}
	return filepath.Join(pgBin, name)
}

// prepare creates the form table, capture's publication and both slots
// before any row exists, so both slots see the same WAL.
func prepare(ctx context.Context, dsn string) error {
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	for _, q := range []string{
		form.SchemaSQL,
		"CREATE PUBLICATION " + publication + " FOR TABLE public.form_submissions WITH (publish = 'insert')",
		"SELECT pg_create_logical_replication_slot('" + captureSlot + "', 'pgoutput')",
		"SELECT pg_create_logical_replication_slot('" + readerSlot + "', 'pgoutput')",
	} {
		if _, err := c.Exec(ctx, q); err != nil {
			return fmt.Errorf("%.60s: %w", q, err)
		}
	}
	return nil
}

// insertScript is the pgbench script: one form row per transaction, made
// distinct by its transaction id so no two rows share a record hash. The
// sample shape is a realistic row (sample 1's values); the small shape a
// handful of short columns, the rest NULL (createdat its default).
func insertScript(shape string) (string, error) {
	if shape == "small" {
		return "INSERT INTO public.form_submissions (newusername, emailaddress, departmentname, \"Comments\") " +
			"VALUES ('Ada', 'ada@x.io', 'IT', 'r' || pg_current_xact_id());\n", nil
	}
	s, err := form.Samples()
	if err != nil {
		return "", err
	}
	var names, values []string
	for _, c := range form.FormColumns {
		names = append(names, `"`+c.Name+`"`)
		switch v := s[0][c.Name]; {
		case c.Name == "Comments":
			values = append(values, "'bench row xid ' || pg_current_xact_id()")
		case v == nil:
			values = append(values, "NULL")
		case c.Type == "date":
			values = append(values, quote(*v)+"::date")
		default:
			values = append(values, quote(*v))
		}
	}
	return fmt.Sprintf("INSERT INTO public.form_submissions (%s) VALUES (%s);\n", strings.Join(names, ", "), strings.Join(values, ", ")), nil
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// backlog writes n single-row transactions with pgbench while no reader is
// attached, and returns the WAL position after them.
func (b *bench) backlog(ctx context.Context, w *world, n int) (end pglogrepl.LSN, took time.Duration, err error) {
	script, err := insertScript(b.o.row)
	if err != nil {
		return 0, 0, err
	}
	path := filepath.Join(b.tmp, "insert.sql")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		return 0, 0, err
	}
	clients := min(b.o.clients, n)
	per := n / clients
	jobs := min(clients, 2)
	args := []string{"-n", "-M", "prepared", "-f", path, "-c", strconv.Itoa(clients), "-j", strconv.Itoa(jobs),
		"-t", strconv.Itoa(per), "-h", "127.0.0.1", "-p", strconv.Itoa(b.srv.Port()), "-U", "postgres", w.db}
	begin := time.Now()
	cmd := exec.CommandContext(ctx, pgTool("pgbench"), args...)
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	took = time.Since(begin)
	if err != nil {
		return 0, 0, fmt.Errorf("pgbench: %w\n%s", err, out)
	}
	c, err := pgx.Connect(ctx, w.dsn)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close(context.Background())
	var rows int
	var s string
	if err := c.QueryRow(ctx, "SELECT count(*), pg_current_wal_lsn()::text FROM public.form_submissions").Scan(&rows, &s); err != nil {
		return 0, 0, err
	}
	if rows != per*clients {
		return 0, 0, fmt.Errorf("pgbench wrote %d rows, want %d", rows, per*clients)
	}
	end, err = pglogrepl.ParseLSN(s)
	return end, took, err
}

// recvlogical times pg_recvlogical decoding the reader slot (pgoutput,
// binary messages written to a file) up to end.
func (b *bench) recvlogical(ctx context.Context, w *world, end pglogrepl.LSN) (took time.Duration, size int64, walsender time.Duration, err error) {
	out := filepath.Join(b.tmp, "out.bin")
	_ = os.Remove(out)
	args := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(b.srv.Port()), "-U", "postgres", "-d", w.db,
		"--slot", readerSlot, "--start", "-o", "proto_version=1", "-o", "publication_names=" + publication,
		"-f", out, "--endpos", end.String(), "--no-loop"}
	cw, err := b.watchCPU(ctx, w.dsn, readerSlot)
	if err != nil {
		return 0, 0, 0, err
	}
	begin := time.Now()
	cmd := exec.CommandContext(ctx, pgTool("pg_recvlogical"), args...)
	cmd.Env = cleanEnv()
	msg, err := cmd.CombinedOutput()
	took = time.Since(begin)
	walsender, _ = cw.stop()
	if err != nil {
		return 0, 0, 0, fmt.Errorf("pg_recvlogical: %w\n%s", err, msg)
	}
	st, err := os.Stat(out)
	if err != nil {
		return 0, 0, 0, err
	}
	return took, st.Size(), walsender, nil
}

// slotConfirmed reads a slot's confirmed_flush_lsn.
func slotConfirmed(ctx context.Context, c *pgx.Conn, slot string) (pglogrepl.LSN, error) {
	var s *string
	if err := c.QueryRow(ctx, "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&s); err != nil {
		return 0, err
	}
	if s == nil {
		return 0, nil
	}
	return pglogrepl.ParseLSN(*s)
}
