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
	if err := sameHashFields(ctx, js, conn, cfg, scan.Relation()); err != nil {
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
// dropped do not count.
func sameHashFields(ctx context.Context, js jetstream.JetStream, conn *pgx.Conn, cfg Config, rel *pgcdc.Relation) error {
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
	// A field (with its other names, old|new) counts where any name does.
	anyOf := func(f string, in func(string) bool) bool { return slices.ContainsFunc(form.FieldNames(f), in) }
	for _, f := range mine {
		if anyOf(f, func(n string) bool { return carried[n] }) && !slices.Contains(theirs, f) {
			return hashFieldsDiffer(cfg, m.Sequence, mine, theirs)
		}
	}
	for _, f := range theirs {
		if anyOf(f, func(n string) bool { return slices.Contains(cols, n) }) && !slices.Contains(mine, f) {
			return hashFieldsDiffer(cfg, m.Sequence, mine, theirs)
		}
	}
	// Columns added since the last event hash like NULL in the rows
	// captured before, unless the ADD gave those rows a value (a default,
	// NOT NULL): then each would get a new hash.
	var added []string
	for _, f := range mine {
		if !anyOf(f, func(n string) bool { return carried[n] }) && !slices.Contains(theirs, f) {
			added = append(added, form.FieldNames(f)...)
		}
	}
	if len(added) == 0 {
		return nil
	}
	rows, err := conn.Query(ctx, `SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attname = ANY($2)
		AND NOT attisdropped AND (atthasdef OR attnotnull OR atthasmissing) ORDER BY attnum`, cfg.Table.Ident(), added)
	if err != nil {
		return fmt.Errorf("read the columns of %s added since its last event: %w", cfg.Table, err)
	}
	filled, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("read the columns of %s added since its last event: %w", cfg.Table, err)
	}
	if len(filled) > 0 {
		return fmt.Errorf("%w: HASH_FIELDS: %s added to %s since capture's last event (seq %d) with a default or NOT NULL, so rows captured before hold a value there "+
			"and this backfill would give each a new hash and a second ticket; run it with HASH_FIELDS=%s (the events' fields), or with --since after the column was added",
			pgcdc.ErrStartup, strings.Join(filled, ", "), cfg.Table, m.Sequence, strings.Join(theirs, ","))
	}
	return nil
}

func hashFieldsDiffer(cfg Config, seq uint64, mine, theirs []string) error {
	return fmt.Errorf("%w: HASH_FIELDS: this backfill would hash %s over %s, but capture's events in %s (the last: seq %d) hash over %s: every row would get a new hash and a second ticket; run it with the capture service's HASH_FIELDS",
		pgcdc.ErrStartup, cfg.Table, strings.Join(mine, ","), stream.Forms, seq, strings.Join(theirs, ","))
}
