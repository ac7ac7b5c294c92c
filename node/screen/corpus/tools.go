//go:build tools

// Package corpus holds what moat's screening tests and benchmarks need
// from outside projects, kept out of moat's own go.mod: the extractor of
// gitleaks' rule samples (./extract) and the side-by-side benchmark
// against gitleaks' detector.
package corpus

import _ "github.com/zricethezav/gitleaks/v8/cmd/generate/config/rules"
