package store

import (
	"context"
	"time"
)

const policyCols = "id, body, author, message, created"

func scanPolicy(r scanner) (*PolicyVersion, error) {
	p := new(PolicyVersion)
	err := r.Scan(&p.ID, &p.Text, &p.Author, &p.Message, timeCol{&p.Created})
	return p, err
}

// SavePolicy implements Store. It fills p.ID (increasing) and p.Created
// (now, unless set).
func (s *DB) SavePolicy(ctx context.Context, p *PolicyVersion) error {
	return s.savePolicy(ctx, p, -1)
}

// SavePolicyOver implements Store. SQLite runs one writer at a time; on
// PostgreSQL the table is locked against other writers for the check.
func (s *DB) SavePolicyOver(ctx context.Context, p *PolicyVersion, base int64) error {
	return s.savePolicy(ctx, p, base)
}

// savePolicy inserts p when base < 0 or base is the newest version.
func (s *DB) savePolicy(ctx context.Context, p *PolicyVersion, base int64) error {
	if p.Created.IsZero() {
		p.Created = time.Now()
	}
	err := s.inTx(ctx, func(c conn) error {
		if base >= 0 && s.d.name == "postgres" {
			if _, err := c.exec(ctx, "LOCK TABLE policies IN SHARE ROW EXCLUSIVE MODE"); err != nil {
				return err
			}
		}
		if base >= 0 {
			var newest int64
			if err := c.row(ctx, "SELECT COALESCE(MAX(id), 0) FROM policies").Scan(&newest); err != nil {
				return err
			}
			if newest != base {
				return ErrConflict // another version was saved since base
			}
		}
		return c.row(ctx, `INSERT INTO policies (body, author, message, created)
			VALUES (?, ?, ?, ?) RETURNING id`,
			p.Text, p.Author, p.Message, s.d.timeArg(p.Created)).Scan(&p.ID)
	})
	return s.fail("save policy", err)
}

// Policy implements Store.
func (s *DB) Policy(ctx context.Context) (*PolicyVersion, error) {
	p, err := getOne(ctx, s.rd(), scanPolicy, "SELECT "+policyCols+" FROM policies ORDER BY id DESC LIMIT 1")
	return p, s.fail("policy", err)
}

// PolicyVersion implements Store.
func (s *DB) PolicyVersion(ctx context.Context, id int64) (*PolicyVersion, error) {
	p, err := getOne(ctx, s.rd(), scanPolicy, "SELECT "+policyCols+" FROM policies WHERE id = ?", id)
	return p, s.fail("policy version", err)
}

// PolicyHistory implements Store; limit ≤ 0 means 100.
func (s *DB) PolicyHistory(ctx context.Context, limit int) ([]*PolicyVersion, error) {
	ps, err := getAll(ctx, s.rd(), scanPolicy,
		"SELECT "+policyCols+" FROM policies ORDER BY id DESC LIMIT ?", clampLimit(limit, 100, 10000))
	return ps, s.fail("policy history", err)
}

// clampLimit returns def for limit ≤ 0 and at most max.
func clampLimit(limit, def, max int) int {
	switch {
	case limit <= 0:
		return def
	case limit > max:
		return max
	}
	return limit
}
