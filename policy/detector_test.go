package policy

import (
	"strings"
	"testing"
)

func TestParseDetectors(t *testing.T) {
	src := `{` + defs + `"grants": [{"src": ["group:ml"], "models": ["llama"], "guard": {"redact": ["pii"],
	  "detectors": [{"name": "mrn", "pattern": "MRN-\\d{8}", "category": "pii"},
	                {"name": "employee-id", "pattern": "E[0-9]{6}", "validator": "luhn", "category": "secrets"}]}}]}`
	p, err := Parse("p.hujson", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	ds := p.Grants[0].Guard.Detectors
	if len(ds) != 2 || ds[0] != (Detector{Name: "mrn", Pattern: `MRN-\d{8}`, Category: "pii"}) || ds[1].Validator != "luhn" {
		t.Fatalf("detectors %+v", ds)
	}
}

func TestDetectorErrors(t *testing.T) {
	grant := func(dets string) string {
		return `{` + defs + `"grants": [{"src": ["group:ml"], "models": ["llama"], "guard": {"detectors": [` + dets + `]}}]}`
	}
	for _, tt := range []struct{ name, dets, want string }{
		{"unbounded", `{"name": "mrn", "pattern": "MRN-\\d+", "category": "pii"}`, `5:106: grants[0].guard.detectors[0]: pattern has unbounded repetition "[0-9]+"; give an upper bound such as {1,32}`},
		{"open repeat", `{"name": "mrn", "pattern": "MRN-\\d{8,}", "category": "pii"}`, `unbounded repetition "[0-9]{8,}"; give an upper bound such as {8,32}`},
		{"anchor", `{"name": "mrn", "pattern": "^MRN-\\d{8}", "category": "pii"}`, `pattern has an anchor (^, $, \A or \z)`},
		{"too long a match", `{"name": "mrn", "pattern": "[A-Z]{100}[0-9]{100}", "category": "pii"}`, `pattern matches up to 200 bytes; at most 128`},
		{"too short a match", `{"name": "mrn", "pattern": "M\\d?", "category": "pii"}`, `pattern matches as few as 1 bytes; at least 4`},
		{"too big", `{"name": "mrn", "pattern": "(?:[a-c]{2,8}[0-2]{2,8}|[d-f]{2,8}[3-5]{2,8}|[g-i]{2,8}[6-9]{2,8}|[j-l]{2,8}[0-2]{2,8}|[m-o]{2,8}[3-5]{2,8}|[p-r]{2,8}[6-9]{2,8}|[s-u]{2,8}[0-2]{2,8}|[v-z]{2,8}[3-5]{2,8}){1,8}", "category": "pii"}`, `compiles to 1857 instructions; at most 1000`},
		{"too long", `{"name": "mrn", "pattern": "` + strings.Repeat("a", 300) + `", "category": "pii"}`, `pattern is 300 bytes; at most 256`},
		{"syntax", `{"name": "mrn", "pattern": "MRN-(\\d{8}", "category": "pii"}`, `missing closing )`},
		{"built-in name", `{"name": "email", "pattern": "MRN-\\d{8}", "category": "pii"}`, `grants[0].guard.detectors[0].name: "email" is a built-in rule`},
		{"bad name", `{"name": "MRN", "pattern": "MRN-\\d{8}", "category": "pii"}`, `use 2 to 40 lower-case letters`},
		{"twice", `{"name": "mrn", "pattern": "MRN-\\d{8}", "category": "pii"}, {"name": "mrn", "pattern": "MR-\\d{8}", "category": "pii"}`, `detectors[1]: name "mrn" is used twice`},
		{"no category", `{"name": "mrn", "pattern": "MRN-\\d{8}"}`, `detectors[0]: category is missing`},
		{"bad category", `{"name": "mrn", "pattern": "MRN-\\d{8}", "category": "links"}`, `category: unknown value "links"; use one of "secrets", "pii"`},
		{"bad validator", `{"name": "mrn", "pattern": "MRN-\\d{8}", "validator": "crc", "category": "pii"}`, `validator: unknown value "crc"; use one of "luhn", "mod97", "mod11"`},
		{"no pattern", `{"name": "mrn", "category": "pii"}`, `detectors[0]: pattern is missing`},
		{"unknown key", `{"name": "mrn", "regex": "x", "category": "pii"}`, `unknown key "regex"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("p.hujson", []byte(grant(tt.dets)))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
		})
	}
}

func TestDetectorLimitCount(t *testing.T) {
	var dets []string
	for i := range MaxDetectors + 1 {
		dets = append(dets, `{"name": "d`+string(rune('a'+i))+`x", "pattern": "MRN-\\d{8}", "category": "pii"}`)
	}
	src := `{` + defs + `"grants": [{"src": ["group:ml"], "models": ["llama"], "guard": {"detectors": [` + strings.Join(dets, ",") + `]}}]}`
	if _, err := Parse("p.hujson", []byte(src)); err == nil || !strings.Contains(err.Error(), "detectors[16]: at most 16 detectors per grant") {
		t.Errorf("error %v", err)
	}
}

// FuzzCompileDetector: any pattern either is refused or compiles within
// the limits it promises.
func FuzzCompileDetector(f *testing.F) {
	for _, s := range []string{`MRN-\d{8}`, `(?i)emp[0-9]{4,10}`, `a*`, `(x{1,100}){1,100}`, `\bE\d{6}\b`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, pattern string) {
		re, hi, err := CompileDetector(pattern)
		if err != nil {
			return
		}
		if hi > MaxDetectorMatch || len(pattern) > MaxPatternLen || re.MatchString("") {
			t.Fatalf("%q accepted: longest %d, matches empty %v", pattern, hi, re.MatchString(""))
		}
	})
}
