package screen

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/moatmesh/moat/policy"
)

func TestHealthIDs(t *testing.T) {
	sc := mustScanner(t, RuleActions{"us-npi": ActionRedact, "us-dea": ActionRedact, "uk-nhs-number": ActionRedact})
	for _, tc := range []struct{ in, want string }{
		// NPI: CMS's example number; Luhn over 80840 and the ten digits.
		{"Provider NPI: 1234567893.", "Provider NPI: [REDACTED:us-npi]."},
		{"npi=1245319599", "npi=[REDACTED:us-npi]"},
		{"NPI 1234567890", "NPI 1234567890"},                     // check digit wrong
		{"order 1234567893 shipped", "order 1234567893 shipped"}, // no name before it
		{"NPI 3234567893", "NPI 3234567893"},                     // NPIs start with 1 or 2
		// DEA: AB1234563: 1+3+5 + 2*(2+4+6) = 33, check digit 3.
		{"DEA AB1234563 on file", "DEA [REDACTED:us-dea] on file"},
		{"dr. smith, F91234563", "dr. smith, [REDACTED:us-dea]"},
		{"AB1234564", "AB1234564"},   // check digit wrong
		{"QB1234563", "QB1234563"},   // no registrant type Q
		{"XAB1234563", "XAB1234563"}, // part of a longer word
		// NHS: the NHS's example 943 476 5919, mod 11.
		{"NHS number 943 476 5919", "NHS number [REDACTED:uk-nhs-number]"},
		{"NHS no: 9434765919", "NHS no: [REDACTED:uk-nhs-number]"},
		{"nhs-no 943-476-5919!", "nhs-no [REDACTED:uk-nhs-number]!"},
		{"NHS number 943 476 5918", "NHS number 943 476 5918"}, // check digit wrong
		{"call 943 476 5919", "call 943 476 5919"},             // no name before it
		{"NHS number 943 476 59190", "NHS number 943 476 59190"},
	} {
		if got, _, _ := sc.Check(tc.in); got != tc.want {
			t.Errorf("%q → %q, want %q", tc.in, got, tc.want)
		}
	}
}

// mrn is the example of docs/policy.md.
var mrn = policy.Detector{Name: "mrn", Pattern: `MRN-\d{8}`, Category: "pii"}

func customScreen(t testing.TB, ds ...policy.Detector) *Screen {
	t.Helper()
	scr, err := Compile(FromGuard(policy.Guard{Redact: []string{"pii"}, Prompts: policy.Actions{Secrets: "block"}, Detectors: ds}, nil))
	if err != nil {
		t.Fatal(err)
	}
	return scr
}

func TestCustomDetectors(t *testing.T) {
	emp := policy.Detector{Name: "employee-id", Pattern: `E[0-9]{6}`, Validator: "luhn", Category: "secrets"}
	acct := policy.Detector{Name: "account", Pattern: `ACC[0-9A-Z]{6,20}`, Validator: "mod97", Category: "pii"}
	scr := customScreen(t, mrn, emp, acct)
	for _, tc := range []struct{ in, want string }{
		{"patient MRN-12345678 admitted", "patient [REDACTED:mrn] admitted"},
		{"MRN-12345678,MRN-87654321", "[REDACTED:mrn],[REDACTED:mrn]"},
		{"xMRN-12345678", "xMRN-12345678"},                      // glued to a letter before
		{"MRN-123456789", "MRN-123456789"},                      // glued to a digit after
		{"MRN-1234567", "MRN-1234567"},                          // too short
		{"a ＭＲＮ－12345678 b", "a [REDACTED:mrn] b"},              // full-width forms fold
		{"MR\u200bN-12345678", "[REDACTED:mrn]"},                // zero-width space inside
		{"acct ACC1234567820 ok", "acct [REDACTED:account] ok"}, // 1 modulo 97
		{"acct ACC1234567821 ok", "acct ACC1234567821 ok"},
	} {
		if got, _, _ := scr.In.Check(tc.in); got != tc.want {
			t.Errorf("%q → %q, want %q", tc.in, got, tc.want)
		}
	}
	// The employee ID is a secret, and prompts block secrets.
	if _, _, err := scr.In.Check("badge E123455"); err == nil || err.(*BlockError).Rule != "employee-id" {
		t.Errorf("E123455 (Luhn): err %v, want a block by employee-id", err)
	}
	if _, fs, err := scr.In.Check("badge E123456"); err != nil || len(fs) != 0 {
		t.Errorf("E123456 (not Luhn): %v %v, want nothing", fs, err)
	}
	// Answers redact secrets only where the policy says so: here not.
	if fs := scr.Out.Scan("badge E123455"); len(fs) != 0 {
		t.Errorf("answers: %v, want no finding (secrets are not screened in answers)", fs)
	}
}

func TestCustomValidators(t *testing.T) {
	for _, tc := range []struct {
		v, in string
		want  bool
	}{
		{"luhn", "4111-1111-1111-1111", true}, {"luhn", "4111-1111-1111-1112", false},
		{"mod11", "9434765919", true}, {"mod11", "9434765918", false},
		{"mod97", "GB82WEST12345698765432", false}, // an IBAN needs its country moved: mod97 is plain
		{"mod97", "WEST12345698765432GB82", true},
		{"mod97", "1", false},
	} {
		if got := validators[tc.v](tc.in); got != tc.want {
			t.Errorf("%s(%q) = %v, want %v", tc.v, tc.in, got, tc.want)
		}
	}
}

// TestCustomStream: a custom match split across streamed chunks is
// redacted whole, and the hold-back covers the longest match.
func TestCustomStream(t *testing.T) {
	scr := customScreen(t, mrn)
	if h := scr.Out.HoldBack(); h < len("MRN-12345678")+1 {
		t.Fatalf("hold-back %d shorter than the longest match", h)
	}
	text := "Records for MRN-12345678 and MRN-23456789, then more text after them."
	want, _, _ := scr.Out.Check(text)
	if !strings.Contains(want, "[REDACTED:mrn] and [REDACTED:mrn]") {
		t.Fatalf("whole: %q", want)
	}
	for seed := range uint64(200) {
		if got := pushSplits(scr.Out, text, rand.New(rand.NewPCG(seed, 1))); got != want {
			t.Fatalf("seed %d: split %q, whole %q", seed, got, want)
		}
	}
}

func TestCustomRefused(t *testing.T) {
	for _, ds := range [][]policy.Detector{
		{{Name: "email", Pattern: `MRN-\d{8}`, Category: "pii"}}, // a built-in id
		{mrn, mrn}, // twice
		{{Name: "x1", Pattern: `MRN-\d+`, Category: "pii"}},                     // unbounded
		{{Name: "x1", Pattern: `MRN-\d{8}`, Category: "links"}},                 // category
		{{Name: "x1", Pattern: `MRN-\d{8}`, Validator: "crc", Category: "pii"}}, // validator
	} {
		if _, err := Compile(FromGuard(policy.Guard{Redact: []string{"pii"}, Detectors: ds}, nil)); err == nil {
			t.Errorf("%v: compiled, want an error", ds)
		}
	}
}

// TestReservedRuleIDs: policy refuses detector names that are built-in
// rule ids; its list must be this package's.
func TestReservedRuleIDs(t *testing.T) {
	var ids []string
	for _, r := range Rules() {
		ids = append(ids, r.ID)
	}
	if strings.Join(ids, " ") != strings.Join(policy.ReservedRuleIDs, " ") {
		t.Fatalf("policy.ReservedRuleIDs differs from screen.Rules():\n%q\n%q", policy.ReservedRuleIDs, ids)
	}
}

// FuzzCustomDetector: any pattern policy accepts compiles, scans any
// text in bounded time without panicking, and agrees whole and split.
func FuzzCustomDetector(f *testing.F) {
	f.Add(`MRN-\d{8}`, "x MRN-12345678 y", uint64(1))
	f.Add(`(?i)emp[-_ ]?[0-9]{4,10}`, "EMP-12345 emp_9", uint64(2))
	f.Add(`[A-Z]{2}\d{6}|X{4}`, "AB123456XXXXX XXXX", uint64(3))
	f.Fuzz(func(t *testing.T, pattern, text string, seed uint64) {
		if _, _, err := policy.CompileDetector(pattern); err != nil {
			return
		}
		scr, err := Compile(FromGuard(policy.Guard{Redact: []string{"pii"}, Detectors: []policy.Detector{{Name: "fz", Pattern: pattern, Category: "pii"}}}, nil))
		if err != nil {
			t.Fatalf("pattern %q passed policy but not Compile: %v", pattern, err)
		}
		want, _, _ := scr.Out.Check(text)
		if got := pushSplits(scr.Out, text, rand.New(rand.NewPCG(seed, 0))); got != want {
			t.Fatalf("pattern %q text %q\nwhole %q\nsplit %q", pattern, text, want, got)
		}
	})
}

// BenchmarkScan4KCustomDetector: the cost of one policy detector alone
// on a 4 KiB prompt.
func BenchmarkScan4KCustomDetector(b *testing.B) {
	scr, err := Compile(Config{Input: RuleActions{"mrn": ActionRedact}, Custom: []policy.Detector{mrn}})
	if err != nil {
		b.Fatal(err)
	}
	text := inputEvery() + " MRN-12345678"
	b.SetBytes(int64(len(text)))
	p99(b, func() { scr.In.Check(text) })
}
