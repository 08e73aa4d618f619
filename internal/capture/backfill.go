package capture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/cowjacket/formjira/internal/form"
	"github.com/cowjacket/formjira/internal/pgcdc"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
)

// backfillPage is the keyset page size: big enough to keep JetStream busy,
// small enough that a page is a short query.
const backfillPage = 500

// BackfillResult counts what a backfill did.
type BackfillResult struct {
	Read, Published, Duplicates, DeadLettered int
}

// Backfill publishes the rows already in the table (createdat on or after
// since, when set), in keyset pages over the primary key, through the same
// decoder and publisher as the replication stream, so a row gets the same
// hash either way and JetStream collapses the second copy.
func Backfill(ctx context.Context, cfg Config, since time.Time, log *slog.Logger) (BackfillResult, error) {
	var res BackfillResult
	conn, err := pgcdc.Connect(ctx, cfg.DatabaseURL)
	if err != nil {
		return res, err
	}
	defer conn.Close(context.Background())
	scan, err := pgcdc.NewScan(ctx, conn, cfg.Table, pgcdc.ScanOptions{
		HashFields: cfg.HashFields, PageSize: backfillPage, SinceColumn: "createdat", Since: since,
	})
	if err != nil {
		return res, err
	}
	if err := pgcdc.CheckColumns(ctx, conn, cfg.Table, "HASH_FIELDS", cfg.HashFields); err != nil {
		return res, err
	}

	nc, js, err := connectNATS(ctx, cfg, log, false)
	if err != nil {
		return res, err
	}
	defer nc.Close()
	if err := sameHashFields(ctx, js, conn, cfg, scan.Relation(), since); err != nil {
		return res, err
	}
	p, err := newPublisher(nc, stream.Subject(cfg.Table.Schema, cfg.Table.Name), int(nc.MaxPayload()), backfillPage, cfg.AckTimeout, log, newMetrics(nil))
	if err != nil {
		return res, err
	}
	defer p.close()
	ackCtx, stopAcker := context.WithCancel(ctx)
	acked := make(chan struct{})
	go func() { defer close(acked); p.run(ackCtx) }()
	defer func() { stopAcker(); <-acked }()

	summary := func() BackfillResult {
		res.Published, res.Duplicates, res.DeadLettered = int(p.tally.stored.Load()), int(p.tally.duplicates.Load()), int(p.tally.deadLettered.Load())
		return res
	}
	for {
		n, err := scan.Next(ctx, func(row pgcdc.Decoded) error { return p.Publish(ctx, row) })
		res.Read += n
		if err != nil {
			return summary(), err
		}
		if n == 0 {
			return summary(), nil
		}
		// A page is published when JetStream acknowledged all of it.
		if err := p.Drain(ctx); err != nil {
			return summary(), err
		}
		log.Info("backfill page published", "rows", n, "last_key", scan.LastKey())
	}
}

// sameHashFields refuses a backfill whose HASH_FIELDS would hash rows
// otherwise than the service did (a shell without the service's setting):
// every row would be published again under a new hash, a second ticket
// each. It compares with the table's last event in FORMS; columns added
// since that event (NULL in older rows, so hashed alike) and columns since
// dropped do not count, but see filledByAdd.
func sameHashFields(ctx context.Context, js jetstream.JetStream, conn *pgx.Conn, cfg Config, rel *pgcdc.Relation, since time.Time) error {
	st, err := js.Stream(ctx, stream.Forms)
	if err != nil {
		return fmt.Errorf("stream %s: %w", stream.Forms, err)
	}
	subject := stream.Subject(cfg.Table.Schema, cfg.Table.Name)
	m, err := st.GetLastMsgForSubject(ctx, subject)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return nil // nothing captured yet
	case err != nil:
		return fmt.Errorf("read the last event of %s in %s, to compare its HASH_FIELDS (capture's NATS user needs $JS.API.STREAM.MSG.GET.FORMS): %w",
			cfg.Table, stream.Forms, err)
	}
	ev, err := stream.Unmarshal(m.Data)
	if err != nil {
		return nil // not an event of ours: nothing to compare with
	}
	var cols, key []string
	for _, c := range rel.Columns {
		cols = append(cols, c.Name)
		if c.Key {
			key = append(key, c.Name)
		}
	}
	mine := form.NewHashPlan(cols, key, cfg.HashFields).Fields()
	theirs := ev.GetHashFields()
	carried := map[string]bool{}
	for _, c := range ev.GetColumns() {
		carried[c.GetName()] = true
	}
	// Fields match by the name they hash under (a rename listed as old|new
	// hashes as the old name did); a field counts where any name does.
	anyOf := func(f string, in func(string) bool) bool { return slices.ContainsFunc(form.FieldNames(f), in) }
	named := func(fs []string, f string) bool {
		return slices.ContainsFunc(fs, func(g string) bool { return form.FieldName(g) == form.FieldName(f) })
	}
	for _, f := range mine {
		if anyOf(f, func(n string) bool { return carried[n] }) && !named(theirs, f) {
			return hashFieldsDiffer(cfg, m.Sequence, mine, theirs)
		}
	}
	for _, f := range theirs {
		if anyOf(f, func(n string) bool { return slices.Contains(cols, n) }) && !named(mine, f) {
			return hashFieldsDiffer(cfg, m.Sequence, mine, theirs)
		}
	}
	if since.IsZero() {
		return filledByAdd(ctx, conn, cfg, mine)
	}
	return nil
}

// filledByAdd refuses a whole-table backfill over a column that an ADD
// COLUMN … DEFAULT filled in rows already there (atthasmissing): capture
// hashed those rows before the column existed, without it, and this
// backfill would hash them with the default, anew. --since, after the ADD,
// is the way past it (rows since then were captured with the column).
func filledByAdd(ctx context.Context, conn *pgx.Conn, cfg Config, fields []string) error {
	var names []string
	for _, f := range fields {
		names = append(names, form.FieldNames(f)...)
	}
	rows, err := conn.Query(ctx, `SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attname = ANY($2)
		AND NOT attisdropped AND atthasmissing ORDER BY attnum`, cfg.Table.Ident(), names)
	if err != nil {
		return fmt.Errorf("read the columns of %s: %w", cfg.Table, err)
	}
	filled, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("read the columns of %s: %w", cfg.Table, err)
	}
	if len(filled) > 0 {
		return fmt.Errorf("%w: HASH_FIELDS: %s was added to %s with a default, which the rows already there now hold, though capture hashed them without it: "+
			"a backfill of the whole table would give each a new hash and a second ticket; run it with --since a day after the column was added",
			pgcdc.ErrStartup, strings.Join(filled, ", "), cfg.Table)
	}
	return nil
}

func hashFieldsDiffer(cfg Config, seq uint64, mine, theirs []string) error {
	return fmt.Errorf("%w: HASH_FIELDS: this backfill would hash %s over %s, but capture's events in %s (the last: seq %d) hash over %s: every row would get a new hash and a second ticket; run it with the capture service's HASH_FIELDS",
		pgcdc.ErrStartup, cfg.Table, strings.Join(mine, ","), stream.Forms, seq, strings.Join(theirs, ","))
}
