// Package hatest holds the tests of several coordinator replicas on one
// PostgreSQL database behind a round-robin TCP proxy with no stickiness,
// as an operator would run them: every request may land on any replica,
// so every piece of state a request needs must be in the database, and a
// change made on one replica must reach the netmap streams of all. The
// tests skip, saying why, without a PostgreSQL server
// (MOAT_TEST_POSTGRES; `make test` starts one).
package hatest
