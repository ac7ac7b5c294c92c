package cli

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
)

// A config file holds one setting per line: the flag's name, spaces, the
// value ("device-ttl 24h"). Blank lines and lines starting with # are
// skipped; a value in double quotes is unquoted as in Go ("" is empty); a
// boolean's value may be left out to mean true; a repeatable flag's key
// may repeat. Flags and the environment win over the file.

// configLine is one setting read from a config file.
type configLine struct {
	key, value string
	quoted     bool
	line       int
}

// readConfig reads the settings in path, refusing malformed lines.
func readConfig(path string) ([]configLine, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, Usagef("--config: %v", err)
	}
	defer f.Close()
	var lines []configLine
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		l, err := parseLine(text)
		if err != nil {
			return nil, Usagef("%s:%d: %v", path, n, err)
		}
		l.line = n
		lines = append(lines, l)
	}
	if err := sc.Err(); err != nil {
		return nil, Usagef("--config %s: %v", path, err)
	}
	return lines, nil
}

func parseLine(text string) (configLine, error) {
	key, value := text, ""
	if i := strings.IndexAny(text, " \t"); i >= 0 {
		key, value = text[:i], strings.TrimSpace(text[i:])
	}
	l := configLine{key: key, value: value}
	switch {
	case strings.HasPrefix(key, "-"):
		return l, fmt.Errorf("write the key without dashes: %q", strings.TrimLeft(key, "-"))
	case strings.Contains(key, "=") || strings.HasPrefix(value, "="):
		return l, fmt.Errorf("write %q as KEY VALUE, without =", text)
	case strings.HasPrefix(value, `"`):
		v, err := strconv.Unquote(value)
		if err != nil {
			return l, fmt.Errorf("%s: bad quoted value %s", key, value)
		}
		l.value, l.quoted = v, true
	}
	return l, nil
}

// loadFile applies the settings in path that fs has and that no flag or
// variable set already. schema holds every key the file may name.
func loadFile(fs *pflag.FlagSet, schema *pflag.FlagSet, path string) error {
	lines, err := readConfig(path)
	if err != nil {
		return err
	}
	first := map[string]int{}
	for _, l := range lines {
		at := fmt.Sprintf("%s:%d", path, l.line)
		fl := fs.Lookup(l.key)
		if (schema.Lookup(l.key) == nil && fl == nil) || l.key == "config" {
			return Usagef("%s: unknown key %q", at, l.key)
		}
		if n, dup := first[l.key]; dup && !repeatable(fl) && !repeatable(schema.Lookup(l.key)) {
			return Usagef("%s: %s is set twice (first on line %d)", at, l.key, n)
		}
		first[l.key] = l.line
		if fl == nil || !isSetting(fl) || (source(fl) != "" && !strings.HasPrefix(source(fl), path+":")) {
			continue // another command's key, or given as a flag or variable
		}
		if err := setFromFile(fl, l, at); err != nil {
			return err
		}
	}
	return nil
}

func setFromFile(fl *pflag.Flag, l configLine, at string) error {
	v := l.value
	if v == "" && !l.quoted {
		if fl.Value.Type() != "bool" {
			return Usagef("%s: %s needs a value", at, l.key)
		}
		v = "true"
	}
	if err := fl.Value.Set(v); err != nil {
		return Usagef("%s: %s: %s", at, l.key, badValue(fl, v, err))
	}
	annotate(fl, annSource, at+": "+l.key)
	return nil
}

// repeatable reports whether a flag takes many values.
func repeatable(fl *pflag.Flag) bool {
	if fl == nil {
		return false
	}
	_, ok := fl.Value.(pflag.SliceValue)
	return ok
}
