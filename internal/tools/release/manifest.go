package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The release manifest is the trusted comment of each signature:
//
//	file:SHA256SUMS version:v1.2.3 date:2026-12-06T19:00:00Z expires:2027-03-06T19:00:00Z
//
// minisign signs it together with the file's signature (the "global
// signature"), so it cannot be changed or moved to another file without
// the release key. install.sh checks it with openssl: it refuses a
// release whose manifest has expired, and a version lower than the one
// installed (unless --allow-downgrade), so that whoever serves the
// download cannot hand out an older signed release with its known bugs.
// An APT repository's Release file carries the same expiry (Valid-Until).

// defaultValid is how long a signed release is accepted: sign it again
// (with the same files) before then, as an APT archive is.
const defaultValid = "90d"

// manifest is the trusted comment for file name of a release.
func manifest(name, version string, date time.Time, valid time.Duration) string {
	return fmt.Sprintf("file:%s version:%s date:%s expires:%s", name, version,
		date.UTC().Format(time.RFC3339), date.Add(valid).UTC().Format(time.RFC3339))
}

// parseValid reads a validity: Go's durations, and whole days as "90d".
func parseValid(s string) (time.Duration, error) {
	var d time.Duration
	var err error
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		n, err = strconv.Atoi(days)
		d = time.Duration(n) * 24 * time.Hour
	} else {
		d, err = time.ParseDuration(s)
	}
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("validity %q: want a positive duration such as 90d or 720h", s)
	}
	return d, nil
}
