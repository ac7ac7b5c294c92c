package store

// Kind names the database: "sqlite" or "postgres".
func (s *DB) Kind() string { return s.d.name }

// Errors counts the operations that failed in the database itself since
// Open: not "not found" or "conflict" answers, and not callers that gave
// up (a cancelled context), but unreachable servers, timeouts, full disks
// and the like.
func (s *DB) Errors() uint64 { return s.errs.Load() }
