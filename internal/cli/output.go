package cli

import (
	"encoding/json"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/pflag"
)

// JSONFlag adds --json to fs and returns its value.
func JSONFlag(fs *pflag.FlagSet) *bool {
	return fs.Bool("json", false, "print JSON instead of text")
}

// PrintJSON writes v as indented JSON and a newline.
func PrintJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// levelValue is a --log-level: debug, info, warn or error.
type levelValue struct{ l *slog.Level }

func (v levelValue) Set(s string) error {
	switch strings.ToLower(s) {
	case "debug":
		*v.l = slog.LevelDebug
	case "info":
		*v.l = slog.LevelInfo
	case "warn", "warning":
		*v.l = slog.LevelWarn
	case "error":
		*v.l = slog.LevelError
	default:
		return errBadLevel
	}
	return nil
}

func (v levelValue) String() string {
	if v.l == nil {
		return "info"
	}
	return strings.ToLower(v.l.String())
}

func (levelValue) Type() string { return "level" }

type constError string

func (e constError) Error() string { return string(e) }

const errBadLevel = constError("want debug, info, warn or error")

// LogLevelVar adds --log-level (debug, info, warn or error) to fs,
// stored in l; its default is l's value (info for the zero Level).
func LogLevelVar(fs *pflag.FlagSet, l *slog.Level) {
	fs.Var(levelValue{l}, "log-level", "log level: debug, info, warn or error")
}

// Logger returns a text logger writing to w at level.
func Logger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}
