package cli

import (
	"encoding/json"
	"io"

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
