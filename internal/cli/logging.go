package cli

import (
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/pflag"
)

// Logging holds a command's --log-level and --log-format. Its zero value
// logs text at info.
type Logging struct {
	// Level is the least severe level written. Default (zero) info.
	Level slog.Level
	// JSON writes one JSON object a line instead of logfmt-style text.
	// Default false (text).
	JSON bool
}

// Flags adds --log-level (debug, info, warn or error) and --log-format
// (text or json) to fs; their defaults are l's values.
func (l *Logging) Flags(fs *pflag.FlagSet) {
	fs.Var(levelValue{&l.Level}, "log-level", "log level: debug, info, warn or error")
	fs.Var(formatValue{&l.JSON}, "log-format", "log format: text (key=value) or json (one object a line)")
}

// Logger returns a logger writing to w in l's format at l's level.
func (l *Logging) Logger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: l.Level}
	if l.JSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
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

// formatValue is a --log-format: text or json.
type formatValue struct{ json *bool }

func (v formatValue) Set(s string) error {
	switch strings.ToLower(s) {
	case "text":
		*v.json = false
	case "json":
		*v.json = true
	default:
		return errBadFormat
	}
	return nil
}

func (v formatValue) String() string {
	if v.json != nil && *v.json {
		return "json"
	}
	return "text"
}

func (formatValue) Type() string { return "format" }

type constError string

func (e constError) Error() string { return string(e) }

const (
	errBadLevel  = constError("want debug, info, warn or error")
	errBadFormat = constError("want text or json")
)
