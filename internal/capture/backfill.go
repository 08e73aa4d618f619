package capture

import (
	"context"
	"log/slog"
	"time"

	"github.com/cowjacket/formjira/internal/pgcdc"
	"github.com/cowjacket/formjira/internal/stream"
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

	nc, _, err := connectNATS(ctx, cfg, log)
	if err != nil {
		return res, err
	}
	defer nc.Close()
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
