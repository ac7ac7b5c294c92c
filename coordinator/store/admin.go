package store

import (
	"context"
	"time"
)

const adminActionCols = "id, at, actor, action, target, detail"

func scanAdminAction(r scanner) (*AdminAction, error) {
	a := new(AdminAction)
	err := r.Scan(&a.ID, timeCol{&a.Time}, &a.Actor, &a.Action, &a.Target, &a.Detail)
	return a, err
}

// LogAdminAction implements Store. It fills a.ID (increasing) and a.Time
// (now, unless set). IDs are taken under the 'admin' counter's row lock,
// so they become visible in increasing order (AdminActionsAfter misses
// none).
func (s *DB) LogAdminAction(ctx context.Context, a *AdminAction) error {
	if a.Time.IsZero() {
		a.Time = time.Now()
	}
	err := s.inTx(ctx, func(c conn) error {
		var last int64
		err := c.row(ctx, "SELECT value FROM audit_counter WHERE name = 'admin'"+s.d.forUpdate).Scan(&last)
		if err != nil {
			return err
		}
		err = c.row(ctx, `INSERT INTO admin_actions (at, actor, action, target, detail)
			VALUES (?, ?, ?, ?, ?) RETURNING id`,
			s.d.timeArg(a.Time), a.Actor, a.Action, a.Target, a.Detail).Scan(&a.ID)
		if err != nil {
			return err
		}
		_, err = c.exec(ctx, "UPDATE audit_counter SET value = ? WHERE name = 'admin'", a.ID)
		return err
	})
	return s.fail("log admin action", err)
}

// AdminActions implements Store; newest (highest ID) first, limit ≤ 0
// means 100.
func (s *DB) AdminActions(ctx context.Context, limit int) ([]*AdminAction, error) {
	as, err := getAll(ctx, s.rd(), scanAdminAction,
		"SELECT "+adminActionCols+" FROM admin_actions ORDER BY id DESC LIMIT ?", clampLimit(limit, 100, 10000))
	return as, s.fail("admin actions", err)
}

// Setting implements Store; a setting never set is ErrNotFound.
func (s *DB) Setting(ctx context.Context, name string) ([]byte, error) {
	var v []byte
	err := s.rd().row(ctx, "SELECT value FROM settings WHERE name = ?", name).Scan(&v)
	if err != nil {
		return nil, s.fail("setting "+name, err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

// SetSetting implements Store.
func (s *DB) SetSetting(ctx context.Context, name string, value []byte) error {
	_, err := s.wr().exec(ctx, `INSERT INTO settings (name, value) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, blobArg(value))
	return s.fail("set setting "+name, err)
}
