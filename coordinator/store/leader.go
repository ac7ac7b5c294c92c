package store

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// leaderLockClass is the first key of the PostgreSQL advisory locks that
// elect leaders ("lead"); the second is a hash of the schema and the job.
const leaderLockClass = 0x6c656164

// Leader is one replica's claim to a job only one replica may run at a
// time (audit sinks, retention, identity re-checks). On PostgreSQL it is
// a session advisory lock held on a connection of its own: it is the
// leader's while that connection lives, and a replica that is not the
// leader tries again every interval, so when the leader stops or its
// connection dies another takes over. On SQLite, whose database belongs
// to one process, the claim is always held.
//
// Leadership is checked, not fenced: a leader whose connection died
// notices it within one interval (the connection is pinged), and for that
// long two replicas may both believe they lead. Jobs under a Leader must
// therefore be safe to run twice (at least once, compare-and-set
// cursors).
type Leader struct {
	name     string
	dsn      string // "" on SQLite
	interval time.Duration
	held     atomic.Bool
	tries    atomic.Int64 // lock attempts, for tests

	stop context.CancelFunc
	wg   sync.WaitGroup
}

// Leader starts campaigning for the job name, retrying every interval
// (≤ 0 means 5 s). Close stops and gives the claim up.
func (s *DB) Leader(name string, interval time.Duration) *Leader {
	if interval <= 0 {
		interval = 5 * time.Second
	}
	l := &Leader{name: name, dsn: s.dsn, interval: interval}
	if l.dsn == "" {
		l.held.Store(true)
		l.stop = func() {}
		return l
	}
	ctx, stop := context.WithCancel(context.Background())
	l.stop = stop
	l.wg.Go(func() { l.campaign(ctx) })
	return l
}

// IsLeader reports whether this replica holds the claim now.
func (l *Leader) IsLeader() bool { return l.held.Load() }

// Close stops campaigning and, if held, releases the claim (its
// connection is closed).
func (l *Leader) Close() {
	l.stop()
	l.wg.Wait()
	if l.dsn != "" {
		l.held.Store(false)
	}
}

// campaign runs sessions until ctx ends, one interval apart.
func (l *Leader) campaign(ctx context.Context) {
	for {
		_ = l.session(ctx) // a lost connection: connect again
		select {
		case <-ctx.Done():
			return
		case <-time.After(l.interval):
		}
	}
}

// session connects, tries for the lock every interval and, once it has
// it, pings the connection every interval until it fails or ctx ends.
func (l *Leader) session(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, l.dsn)
	if err != nil {
		return fmt.Errorf("leader %s: connect: %w", l.name, err)
	}
	defer conn.Close(context.Background())
	defer l.held.Store(false)
	for {
		if !l.held.Load() {
			ok, err := l.tryLock(ctx, conn)
			if err != nil {
				return err
			}
			l.held.Store(ok)
		} else if err := l.ping(ctx, conn); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(l.interval):
		}
	}
}

func (l *Leader) tryLock(ctx context.Context, conn *pgx.Conn) (bool, error) {
	l.tries.Add(1)
	var ok bool
	err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1, hashtext(current_schema() || ':' || $2))",
		leaderLockClass, l.name).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("leader %s: lock: %w", l.name, err)
	}
	return ok, nil
}

func (l *Leader) ping(ctx context.Context, conn *pgx.Conn) error {
	pctx, cancel := context.WithTimeout(ctx, l.interval)
	defer cancel()
	if err := conn.Ping(pctx); err != nil && ctx.Err() == nil {
		return fmt.Errorf("leader %s: connection lost: %w", l.name, err)
	}
	return nil
}
