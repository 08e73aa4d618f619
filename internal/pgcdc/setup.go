// Package pgcdc is capture's PostgreSQL side: it reads committed INSERTs of
// one table from logical replication (pgoutput) and hands them, decoded,
// with their commit LSNs, to a Sink that decides when the slot may be
// confirmed; it scans the table for backfill into the same decoder input
// (Relation, Row); and it holds every query capture runs (checks, setup,
// slot and publication state, heartbeat).
package pgcdc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/cowjacket/formjira/internal/form"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Table is a schema-qualified table name.
type Table struct{ Schema, Name string }

// ParseTable reads "schema.table" or "table" (schema public). Names are
// taken literally, as PostgreSQL stores them (no case folding).
func ParseTable(s string) (Table, error) {
	s = strings.TrimSpace(s)
	schema, name, ok := strings.Cut(s, ".")
	if !ok {
		schema, name = "public", s
	}
	schema, name = strings.Trim(schema, `"`), strings.Trim(name, `"`)
	if schema == "" || name == "" || strings.Contains(name, ".") {
		return Table{}, fmt.Errorf("want schema.table, got %q", s)
	}
	return Table{schema, name}, nil
}

func (t Table) String() string { return t.Schema + "." + t.Name }

// Ident is the quoted SQL identifier.
func (t Table) Ident() string { return pgx.Identifier{t.Schema, t.Name}.Sanitize() }

// ErrStartup marks a configuration problem of the database that retrying
// does not cure; its message names the fix.
var ErrStartup = errors.New("start-up check failed")

func startupErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrStartup, fmt.Sprintf(format, args...))
}

// Check verifies what capture needs from the server: logical WAL, a role
// allowed to replicate, the table, and the role's right to read it (for
// backfill). Each failure names the fix.
func Check(ctx context.Context, conn *pgx.Conn, t Table) error {
	var walLevel string
	if err := conn.QueryRow(ctx, "SHOW wal_level").Scan(&walLevel); err != nil {
		return fmt.Errorf("read wal_level: %w", err)
	}
	if walLevel != "logical" {
		return startupErr("wal_level is %s: set wal_level=logical in postgresql.conf and restart PostgreSQL", walLevel)
	}
	var role string
	var canReplicate bool
	if err := conn.QueryRow(ctx,
		"SELECT rolname, rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user").
		Scan(&role, &canReplicate); err != nil {
		return fmt.Errorf("read role: %w", err)
	}
	if !canReplicate {
		return startupErr("role %s lacks REPLICATION: ALTER ROLE %s REPLICATION", role, ident(role))
	}
	return checkTable(ctx, conn, t, role)
}

// checkTable: the table exists and role may read it.
func checkTable(ctx context.Context, conn *pgx.Conn, t Table, role string) error {
	var schemaExists, usage bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1),
		COALESCE((SELECT has_schema_privilege(oid, 'USAGE') FROM pg_namespace WHERE nspname = $1), false)`, t.Schema).
		Scan(&schemaExists, &usage); err != nil {
		return fmt.Errorf("look up schema %s: %w", t.Schema, err)
	}
	if schemaExists && !usage {
		return startupErr("role %s lacks USAGE on schema %s: GRANT USAGE ON SCHEMA %s TO %s (deploy/postgres/02-capture-role.sql)",
			role, t.Schema, pgx.Identifier{t.Schema}.Sanitize(), ident(role))
	}
	var exists, canSelect bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL,
		COALESCE(has_table_privilege(to_regclass($1), 'SELECT'), false)`, t.Ident()).Scan(&exists, &canSelect); err != nil {
		return fmt.Errorf("look up table %s: %w", t, err)
	}
	if !exists {
		return startupErr("table %s does not exist: create it (deploy/postgres/01-schema.sql) or set FORM_TABLE", t)
	}
	if !canSelect {
		return startupErr("role %s lacks SELECT on %s: GRANT SELECT ON %s TO %s (deploy/postgres/02-capture-role.sql)", role, t, t.Ident(), ident(role))
	}
	return nil
}

// CheckColumns fails when a configured column (HASH_FIELDS) is not a column
// of t, or a column's name holds the "|" between a field's names.
func CheckColumns(ctx context.Context, conn *pgx.Conn, t Table, variable string, names []string) error {
	rows, err := conn.Query(ctx,
		"SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum", t.Ident())
	if err != nil {
		return fmt.Errorf("read columns of %s: %w", t, err)
	}
	cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("read columns of %s: %w", t, err)
	}
	// "|" separates a field's names: a column named with one cannot be
	// hashed by its name.
	if i := slices.IndexFunc(cols, func(c string) bool { return strings.Contains(c, "|") }); i >= 0 {
		return startupErr("column %q of %s has a '|' in its name, which %s uses between a column's old and new names: rename the column", cols[i], t, variable)
	}
	if n, ok := firstMissing(cols, names); !ok {
		return startupErr("%s: column %q is not in %s (its columns: %s)", variable, n, t, strings.Join(cols, ", "))
	}
	return nil
}

// firstMissing is the first of fields none of whose names (form.FieldNames)
// is in cols (ok: none).
func firstMissing(cols, fields []string) (string, bool) {
	for _, f := range fields {
		if !slices.ContainsFunc(form.FieldNames(f), func(n string) bool { return slices.Contains(cols, n) }) {
			return f, false
		}
	}
	return "", true
}

// Setup creates, when absent, the INSERT-only publication for the table and
// the persistent pgoutput slot. Existing ones are checked, not altered:
// silently rewriting an operator's publication would surprise them.
func Setup(ctx context.Context, conn *pgx.Conn, t Table, publication, slot string, log *slog.Logger) error {
	var pubExists, hasTable, viaRoot, partitioned bool
	err := conn.QueryRow(ctx, `SELECT true, EXISTS (SELECT 1 FROM pg_publication_tables pt
			WHERE pt.pubname = p.pubname AND pt.schemaname = $2 AND pt.tablename = $3), p.pubviaroot
		FROM pg_publication p WHERE p.pubname = $1`, publication, t.Schema, t.Name).Scan(&pubExists, &hasTable, &viaRoot)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("look up publication %s: %w", publication, err)
	}
	if err := conn.QueryRow(ctx, "SELECT relkind = 'p' FROM pg_class WHERE oid = to_regclass($1)", t.Ident()).Scan(&partitioned); err != nil {
		return fmt.Errorf("look up table %s: %w", t, err)
	}
	switch {
	case !pubExists:
		if err := checkOwner(ctx, conn, t, publication, partitioned); err != nil {
			return err
		}
		_, err := conn.Exec(ctx, fmt.Sprintf("CREATE PUBLICATION %s FOR TABLE %s WITH (%s)",
			pgx.Identifier{publication}.Sanitize(), t.Ident(), publicationOptions(partitioned)))
		if err != nil && !isCode(err, "42710") { // duplicate_object: a peer just created it
			return startupErr("create publication %s: %v (create it as the table owner: CREATE PUBLICATION %s FOR TABLE %s WITH (%s))",
				publication, err, ident(publication), t.Ident(), publicationOptions(partitioned))
		}
	case partitioned && !viaRoot:
		// Rows would arrive as the partitions', under their own names.
		return startupErr("publication %s publishes the partitions of %s under their own names, and capture reads the table's: "+
			"ALTER PUBLICATION %s SET (publish_via_partition_root = true), then run capture backfill (rows written before that arrive under the partitions' names, and are skipped)",
			publication, t, ident(publication))
	case !hasTable:
		return startupErr("publication %s does not include %s: ALTER PUBLICATION %s ADD TABLE %s", publication, t, ident(publication), t.Ident())
	}

	// The database the session is in: DATABASE_URL may name none (the
	// role's name is then the database).
	var plugin, db, here string
	err = conn.QueryRow(ctx, `SELECT coalesce(plugin, ''), coalesce(database, ''), current_database()
		FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&plugin, &db, &here)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		var at string
		err := conn.QueryRow(ctx, "SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')", slot).Scan(&at)
		if err != nil && !isCode(err, "42710") {
			return fmt.Errorf("create replication slot %s: %w", slot, err)
		}
		if err == nil && log != nil {
			// Nothing before this point will stream: after a failover or a
			// dropped slot, the rows since the last confirmation need a
			// backfill.
			log.Warn("replication slot created: capture streams from here; rows committed before it reach FORMS only by capture backfill (after a failover or a dropped slot: capture backfill --since the last day capture confirmed)",
				"slot", slot, "lsn", at)
		}
	case err != nil:
		return fmt.Errorf("look up replication slot %s: %w", slot, err)
	case plugin != "pgoutput":
		return startupErr("replication slot %s uses plugin %q, need pgoutput: drop it or set SLOT_NAME", slot, plugin)
	case db != here:
		return startupErr("replication slot %s belongs to database %s: set SLOT_NAME to a slot of this database", slot, db)
	}
	return nil
}

// publicationOptions are the publication's: INSERTs only, and a
// partitioned table's rows published as the table's own
// (https://www.postgresql.org/docs/15/sql-createpublication.html).
func publicationOptions(partitioned bool) string {
	if partitioned {
		return "publish = 'insert', publish_via_partition_root = true"
	}
	return "publish = 'insert'"
}

// checkOwner: only the table's owner may create its publication, so a
// least-privilege role needs the owner to have created it.
func checkOwner(ctx context.Context, conn *pgx.Conn, t Table, publication string, partitioned bool) error {
	var role, owner string
	var owns bool
	err := conn.QueryRow(ctx, `SELECT current_user, pg_get_userbyid(relowner), pg_has_role(relowner, 'USAGE')
		FROM pg_class WHERE oid = to_regclass($1)`, t.Ident()).Scan(&role, &owner, &owns)
	if err != nil {
		return fmt.Errorf("look up the owner of %s: %w", t, err)
	}
	if !owns {
		return startupErr("publication %s does not exist, and only the owner of %s (%s) may create it, not role %s: "+
			"as %s, CREATE PUBLICATION %s FOR TABLE %s WITH (%s) (deploy/postgres/02-capture-role.sql)",
			publication, t, owner, role, owner, ident(publication), t.Ident(), publicationOptions(partitioned))
	}
	return nil
}

func isCode(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}

// ident quotes a name only when SQL needs it, so fixes read naturally.
func ident(s string) string {
	for i, r := range s {
		if !(r >= 'a' && r <= 'z' || r == '_' || i > 0 && r >= '0' && r <= '9') {
			return pgx.Identifier{s}.Sanitize()
		}
	}
	return s
}
