// Command extract dumps the true- and false-positive samples gitleaks
// ships with its rules into moat's screening testdata.
//
// gitleaks builds each rule in cmd/generate/config/rules, with samples it
// passes to utils.Validate. extract builds gitleaks' own config generator
// with an -overlay that makes Validate record its arguments, runs it, and
// writes the samples as JSON lines:
//
//	{"rule":"huggingface-access-token","family":"huggingface","kind":"tp","split":"tune","shape":"prefix","text":"..."}
//
// kind is "tp" or "fp"; split is "held" for about a fifth of the samples,
// chosen by a hash of the text, and "tune" for the rest. The samples
// gitleaks generates from regular expressions are seeded, so two runs
// write the same file.
//
// Run it from node/screen/corpus: go run ./extract
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"hash/fnv"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	_ "embed"

	"github.com/zricethezav/gitleaks/v8/detect"
)

const module = "github.com/zricethezav/gitleaks/v8"

//go:embed record.go.txt
var recordSrc []byte

// Sample is one line of the output.
type Sample struct {
	Rule   string `json:"rule"`
	Family string `json:"family"`
	Kind   string `json:"kind"`
	Split  string `json:"split"`
	Text   string `json:"text"`
	// Shape is "keyword" for rules gitleaks builds as a credential name
	// followed by a value (GenerateSemiGenericRegex), which only a generic
	// rule can match without knowing every provider's name, and "prefix"
	// for the rest: a fixed prefix or structure a specific rule can match.
	Shape string `json:"shape"`
	// Flagged lists, for a false positive, the rules of gitleaks' whole
	// default configuration that still find a secret in it: such a sample
	// is a negative for its own rule only (a real key of another kind, or
	// one gitleaks allowlists by value).
	Flagged []string `json:"flagged,omitempty"`
}

func main() {
	out := flag.String("out", "../testdata/gitleaks", "directory to write samples.jsonl, LICENSE and VERSION to")
	flag.Parse()
	if err := run(*out); err != nil {
		log.Fatal(err)
	}
}

func run(out string) error {
	dir, version, err := moduleDir()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "gitleaks-samples")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	raw, err := generate(dir, tmp)
	if err != nil {
		return err
	}
	samples, err := readSamples(raw)
	if err != nil {
		return err
	}
	if err := flagNegatives(samples); err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	lic, err := os.ReadFile(filepath.Join(dir, "LICENSE"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "LICENSE"), lic, 0o644); err != nil {
		return err
	}
	ver := fmt.Sprintf("%s %s\nextracted by node/screen/corpus/extract from cmd/generate/config/rules\n", module, version)
	if err := os.WriteFile(filepath.Join(out, "VERSION"), []byte(ver), 0o644); err != nil {
		return err
	}
	return writeSamples(filepath.Join(out, "samples.jsonl"), samples)
}

// moduleDir returns where the go command keeps gitleaks' source, and its version.
func moduleDir() (string, string, error) {
	b, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}} {{.Version}}", module).Output()
	if err != nil {
		return "", "", fmt.Errorf("locate %s: %w", module, err)
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return "", "", fmt.Errorf("locate %s: unexpected %q", module, b)
	}
	return f[0], f[1], nil
}

// generate builds and runs gitleaks' config generator, from a copy of its
// source in which Validate records its samples, and returns the path of
// the recording.
func generate(dir, tmp string) (string, error) {
	src := filepath.Join(tmp, "gitleaks")
	if err := os.CopyFS(src, os.DirFS(dir)); err != nil {
		return "", fmt.Errorf("copy gitleaks: %w", err)
	}
	utils := filepath.Join(src, "cmd/generate/config/utils")
	orig, err := os.ReadFile(filepath.Join(utils, "validate.go"))
	if err != nil {
		return "", err
	}
	patched, err := patchValidate(orig)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(utils, "validate.go"), patched, 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(utils, "zz_record.go"), recordSrc, 0o644); err != nil {
		return "", err
	}
	if err := seedSecrets(src); err != nil {
		return "", err
	}
	bin := filepath.Join(tmp, "generate")
	build := exec.Command("go", "build", "-o", bin, "./cmd/generate/config")
	build.Dir = src
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("build generator: %w", err)
	}
	raw := filepath.Join(tmp, "samples.raw")
	gen := exec.Command(bin, filepath.Join(tmp, "gitleaks.toml"))
	gen.Dir = filepath.Join(src, "cmd/generate/config") // it reads rules/config.tmpl
	gen.Env = append(os.Environ(), "MOAT_SAMPLES_OUT="+raw)
	gen.Stderr = os.Stderr
	if err := gen.Run(); err != nil {
		return "", fmt.Errorf("run generator: %w", err)
	}
	return raw, nil
}

// seedSecrets makes the random secrets gitleaks generates for its samples
// the same in every run: each generator is seeded with a counter.
func seedSecrets(src string) error {
	path := filepath.Join(src, "cmd/generate/secrets/regen.go")
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	const call = "\treturn g.Generate(1)\n"
	if !bytes.Contains(b, []byte(call)) {
		return fmt.Errorf("secrets/regen.go: %q not found; gitleaks changed", strings.TrimSpace(call))
	}
	b = bytes.Replace(b, []byte(call), []byte("\tseed++\n\tg.SetSeed(seed)\n"+call), 1)
	b = append(b, "\nvar seed int64\n"...)
	return os.WriteFile(path, b, 0o644)
}

// patchValidate makes Validate and ValidateWithPaths call record first.
func patchValidate(src []byte) ([]byte, error) {
	for _, p := range [][2]string{
		{"func Validate(rule config.Rule, truePositives []string, falsePositives []string) *config.Rule {\n",
			"\trecord(rule, truePositives, falsePositives)\n"},
		{"func ValidateWithPaths(rule config.Rule, truePositives map[string]string, falsePositives map[string]string) *config.Rule {\n",
			"\trecord(rule, values(truePositives), values(falsePositives))\n"},
	} {
		if !bytes.Contains(src, []byte(p[0])) {
			return nil, fmt.Errorf("validate.go: %q not found; gitleaks changed", strings.TrimSpace(p[0]))
		}
		src = bytes.Replace(src, []byte(p[0]), []byte(p[0]+p[1]), 1)
	}
	return src, nil
}

// readSamples reads the recording, drops duplicates and sorts the rest.
func readSamples(path string) ([]Sample, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	seen := map[string]bool{}
	var out []Sample
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var r struct{ Rule, Regex, Kind, Text string }
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, err
		}
		if r.Text == "" {
			continue
		}
		s := Sample{Rule: r.Rule, Family: family(r.Rule), Kind: r.Kind, Split: split(r.Text), Shape: shape(r.Regex), Text: r.Text}
		if key := s.Rule + "\x00" + s.Kind + "\x00" + s.Text; !seen[key] {
			seen[key] = true
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b Sample) int {
		return strings.Compare(a.Rule+"\x00"+a.Kind+"\x00"+a.Text, b.Rule+"\x00"+b.Kind+"\x00"+b.Text)
	})
	return out, sc.Err()
}

// flagNegatives runs gitleaks' default detector over the false positives.
func flagNegatives(samples []Sample) error {
	d, err := detect.NewDetectorDefaultConfig()
	if err != nil {
		return fmt.Errorf("gitleaks detector: %w", err)
	}
	for i := range samples {
		if samples[i].Kind != "fp" {
			continue
		}
		for _, f := range d.DetectString(samples[i].Text) {
			if !slices.Contains(samples[i].Flagged, f.RuleID) {
				samples[i].Flagged = append(samples[i].Flagged, f.RuleID)
			}
		}
		slices.Sort(samples[i].Flagged)
	}
	return nil
}

// family is the provider a rule belongs to: the first word of its id.
func family(rule string) string {
	switch {
	case rule == "private-key":
		return rule
	case strings.HasPrefix(rule, "new-relic-"):
		return "new-relic"
	}
	f, _, _ := strings.Cut(rule, "-")
	return f
}

// shape tells keyword rules from prefix rules by the identifier part
// GenerateSemiGenericRegex puts at the start of their expression.
func shape(regex string) string {
	if strings.Contains(regex, `[\w.-]{0,50}?(?`) {
		return "keyword"
	}
	return "prefix"
}

// split puts about a fifth of the samples, by a hash of their text, in
// the held-out part that detectors must never be tuned on.
func split(text string) string {
	h := fnv.New32a()
	h.Write([]byte(text))
	if h.Sum32()%5 == 0 {
		return "held"
	}
	return "tune"
}

func writeSamples(path string, samples []Sample) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	for _, s := range samples {
		if err := enc.Encode(s); err != nil {
			return err
		}
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}
