package store

import (
	"slices"
	"testing"
)

// WithMigrationForTest makes this binary know one more migration, as the
// next release would, until t ends. Tests that use it must not run in
// parallel with others.
func WithMigrationForTest(t *testing.T, minLevel int, stmts ...string) {
	old := migrations
	next := SchemaLevel() + 1
	migrations = append(slices.Clip(old), migration{version: next, name: "test migration", minLevel: minLevel, stmts: stmts})
	t.Cleanup(func() { migrations = old })
}

// AsReleaseForTest makes this binary know only the migrations up to
// version level, as an older release would, until t ends.
func AsReleaseForTest(t *testing.T, level int) {
	old := migrations
	i := slices.IndexFunc(old, func(m migration) bool { return m.version > level })
	if i < 0 {
		t.Fatalf("no migration after version %d", level)
	}
	migrations = old[:i]
	t.Cleanup(func() { migrations = old })
}

// Tries is how often l has tried for its lock.
func (l *Leader) Tries() int64 { return l.tries.Load() }

// DeviceVersionCols are the columns whose update bumps a device's version.
const DeviceVersionCols = deviceVersionCols
