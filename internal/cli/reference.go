package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Reference writes a Markdown reference of root's commands and their
// flags, with each setting's environment variable and default. The docs
// are generated with it, and a test keeps them current.
func Reference(w io.Writer, root *cobra.Command) {
	prepare(root)
	walk(root, func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" || strings.Contains(c.CommandPath(), " completion") || (!c.Runnable() && c != root) || isGroup(c) && c != root {
			return
		}
		if c == root {
			fmt.Fprintf(w, "# %s\n\n%s\n\n", c.Name(), c.Short)
			return
		}
		fmt.Fprintf(w, "## %s\n\n%s\n\n", c.CommandPath(), strings.TrimSpace(firstNonEmpty(c.Long, c.Short)))
		fmt.Fprintf(w, "```\n%s\n```\n\n", c.UseLine())
		flagTable(w, c.LocalFlags())
	})
}

func isGroup(c *cobra.Command) bool { return c.HasSubCommands() }

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// flagTable writes fs as a table: flag, environment variable, default,
// meaning.
func flagTable(w io.Writer, fs *pflag.FlagSet) {
	if !fs.HasAvailableFlags() {
		return
	}
	fmt.Fprintln(w, "| flag | environment | default | meaning |")
	fmt.Fprintln(w, "|---|---|---|---|")
	fs.VisitAll(func(fl *pflag.Flag) {
		if fl.Hidden || fl.Name == "help" {
			return
		}
		env := ""
		if isSetting(fl) {
			env = "`" + EnvName(fl.Name) + "`"
		}
		def := strings.Trim(fl.DefValue, "[]")
		if def != "" && def != "false" {
			def = "`" + def + "`"
		} else {
			def = ""
		}
		usage := strings.TrimSuffix(fl.Usage, " [$"+EnvName(fl.Name)+"]")
		fmt.Fprintf(w, "| `--%s` | %s | %s | %s |\n", fl.Name, env, def, strings.ReplaceAll(usage, "|", `\|`))
	})
	fmt.Fprintln(w)
}
