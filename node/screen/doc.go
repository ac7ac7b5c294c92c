// Package screen is the guard's screening engine: detectors for secrets,
// personal data, prompt injection and exfiltration links; the actions a
// policy asks for (flag, redact, block); a streaming redactor with a bounded
// hold-back; wire-format filters for OpenAI SSE and Ollama NDJSON streams;
// a per-identity abuse and extraction tracker; and an optional hook to a
// local HTTP classifier.
//
// It is pure Go and self-contained: no network (except the classifier hook,
// which talks to an endpoint the caller names), no model downloads, no
// goroutines.
//
// # Using it
//
// The guard compiles a grant's guard settings once per policy:
//
//	scr, err := screen.Compile(screen.FromGuard(grant.Guard, allowHosts))
//
// and per request checks the input and filters the streamed output:
//
//	prompt, findings, err := scr.In.Check(prompt) // err is *BlockError when a block rule fired
//	w := scr.Out.NewSSEWriter(client)             // or NewNDJSONWriter; flushes per event
//	io.Copy(w, upstream.Body); w.Close()          // err is *BlockError, ErrMalformedEvent...
//
// (or, event by event, f := scr.Out.NewSSEFilter(); out, err = f.Event(out[:0], ev)).
//
// # Matching
//
// No regular expressions: provider tokens are found by a table of fixed
// prefixes with a charset and a least length for the body (vendors.go) or
// by their shape (shapes.go), checked only at the start of a token run;
// credentials in context (HTTP auth headers, curl -u, webhook URLs,
// passwords in URLs, name = value in config and code layouts, the data of
// Kubernetes Secret manifests in k8s.go) by small scanners. Before
// matching, invisible runes are dropped and compatibility forms folded
// (fold.go); a match maps back onto the source text. Overlapping matches
// merge into one span, so no part of either is left in clear. Health
// identifiers (NPI, DEA, NHS numbers) are read from digit runs with their
// checksums (health.go); injection phrasings in non-Latin scripts are
// sequences of stems looked for only in runes outside ASCII (scripts.go).
// The one place a policy's own regular expression runs is its detectors
// (custom.go): Go's linear-time regexp, compiled once per policy, with
// the bounds policy.CompileDetector enforces. All of them run in one
// detector (customscan.go): those with a literal prefix are searched for
// it, the others tried, anchored, only where one pass over the text finds
// a byte they may start with at the start of a word, after a check of
// their first fixed bytes.
//
// testdata/gitleaks holds the samples of gitleaks' rules (MIT, extracted by
// the separate module in ./corpus, which also benchmarks moat beside
// gitleaks); gitleaks_test.go scores the detectors on them per family.
// testdata/secretlint holds secretlint's rule fixtures (MIT, extracted by
// corpus/secretlint/extract.py), a second corpus never tuned on, scored by
// secretlint_test.go.
//
// # Hold-back
//
// A Stream releases text as soon as no pattern can still start in it. Each
// rule declares how many bytes it needs to see, from the first byte of a
// match, to decide whether that match is one ("decision length"; a match
// that is longer, such as a long JWT or a private key, is followed to its
// end once decided). The stream holds back at most HoldBack() bytes: one
// more than the largest decision length among the enabled rules, and never
// more than MaxHoldBack (256). Everything before that tail is released at
// once.
package screen
