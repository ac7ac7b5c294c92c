package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
)

// Bus carries short messages between the replicas sharing one PostgreSQL
// database, over LISTEN/NOTIFY: a message published by one replica
// reaches every replica listening at that moment, the sender included,
// in the order sent. A listener whose connection dropped misses what was
// sent meanwhile; Listen's caller resyncs from the database after every
// (re)connect. SQLite serves one process: its Bus carries messages
// between the stores open on one database file in this process (several
// coordinators in one test), with the same contract.
type Bus struct {
	dsn     string
	db      *DB
	channel string    // per schema, so that schemas in one database do not hear each other
	local   *localBus // SQLite
	path    string    // SQLite's database file, naming its local buses
}

// Bus returns the store's Bus.
func (s *DB) Bus(ctx context.Context) (*Bus, error) {
	if s.dsn == "" {
		return &Bus{local: localBusFor(s.path, ""), path: s.path}, nil
	}
	var schema string
	if err := s.rd().row(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return nil, s.fail("bus", err)
	}
	h := sha256.Sum256([]byte(schema))
	return &Bus{dsn: s.dsn, db: s, channel: "moat_" + hex.EncodeToString(h[:8])}, nil
}

// Topic returns a Bus on a channel of its own beside b's, named name
// (lowercase letters): its messages reach only its listeners, so that a
// kind of message b's listeners do not know does not disturb them.
func (b *Bus) Topic(name string) *Bus {
	if b.local != nil {
		return &Bus{local: localBusFor(b.path, name), path: b.path}
	}
	return &Bus{dsn: b.dsn, db: b.db, channel: b.channel + "_" + name}
}

// Channel is the PostgreSQL channel the Bus uses ("" for SQLite).
func (b *Bus) Channel() string { return b.channel }

// Publish sends msg (at most 7,900 bytes) to every listening replica.
func (b *Bus) Publish(ctx context.Context, msg string) error {
	if b.local != nil {
		b.local.publish(msg)
		return nil
	}
	_, err := b.db.wr().exec(ctx, "SELECT pg_notify(?, ?)", b.channel, msg)
	return b.db.fail("publish", err)
}

// Listen timing: how long to wait for a message before checking that the
// connection still answers, and how long that check may take.
const (
	listenIdle = 20 * time.Second
	listenPing = 5 * time.Second
)

// Listen opens a connection of its own, listens, calls listening once
// messages will be received, and then hands each message to deliver
// until ctx ends (nil) or the connection fails (its error; call Listen
// again, and resync once it calls listening). An idle connection is
// checked every listenIdle, so a silently lost one is noticed.
func (b *Bus) Listen(ctx context.Context, listening func(), deliver func(msg string)) error {
	if b.local != nil {
		return b.local.listen(ctx, listening, deliver)
	}
	cfg, err := pgx.ParseConfig(b.dsn)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// A timed-out wait only sets a deadline: the connection stays usable
	// (the default would send the server a cancel request).
	cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.DeadlineContextWatcherHandler{Conn: c.Conn()}
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("listen: connect: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{b.channel}.Sanitize()); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	listening()
	for {
		wctx, cancel := context.WithTimeout(ctx, listenIdle)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil:
			deliver(n.Payload)
		case errors.Is(err, context.DeadlineExceeded):
			pctx, cancel := context.WithTimeout(ctx, listenPing)
			err = conn.Ping(pctx)
			cancel()
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("listen: connection lost: %w", err)
			}
		default:
			return fmt.Errorf("listen: %w", err)
		}
	}
}
