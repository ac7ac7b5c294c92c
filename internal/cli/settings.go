package cli

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// EnvPrefix starts the environment variable of every setting:
// --device-ttl is MOAT_DEVICE_TTL.
const EnvPrefix = "MOAT_"

// Flag and command annotations.
const (
	annSetting  = "moat.setting"   // the flag may come from the environment and the config file
	annSecretOf = "moat.secret-of" // on NAME-file: the secret flag it fills
	annSource   = "moat.source"    // where LoadSettings found the value
	annConfig   = "moat.config"    // on a command: it reads --config
)

// EnvName is the environment variable of the setting flag name.
func EnvName(name string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Settings marks every flag in fs as a setting: when the flag is not
// given, MOAT_<NAME> sets it, and else a line of the config file. Call it
// after SecretFile, then add fs to the command's flags.
func Settings(fs *pflag.FlagSet) {
	fs.VisitAll(func(fl *pflag.Flag) {
		annotate(fl, annSetting, "true")
		fl.Usage += " [$" + EnvName(fl.Name) + "]"
	})
}

// SecretFile adds NAME-file to fs for the secret flag name: a file whose
// content, less one trailing newline, is the secret. Give one or the
// other, never both.
func SecretFile(fs *pflag.FlagSet, name string) {
	fs.String(name+"-file", "", "file holding --"+name+" (one trailing newline is dropped)")
	annotate(fs.Lookup(name+"-file"), annSecretOf, name)
}

// ConfigFile gives cmd the --config FILE flag (also MOAT_CONFIG). The
// file may hold any key of schema, the settings of the binary's main
// command; keys cmd lacks are skipped, keys schema lacks are refused.
func ConfigFile(cmd *cobra.Command, schema *pflag.FlagSet) {
	fs := pflag.NewFlagSet("config", pflag.ContinueOnError)
	fs.String("config", "", "read settings from this file: one \"key value\" per line, keys as the flags")
	Settings(fs)
	cmd.Flags().AddFlagSet(fs)
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[annConfig] = "true"
	cmd.PreRunE = func(c *cobra.Command, _ []string) error { return loadSettings(c, schema) }
}

// LoadSettings fills cmd's settings that were not given as flags from the
// environment, then its secrets from their *-file flags. Commands given a
// config file with ConfigFile read it too; Run calls this before every
// command.
func LoadSettings(cmd *cobra.Command) error { return loadSettings(cmd, nil) }

func loadSettings(cmd *cobra.Command, schema *pflag.FlagSet) error {
	fs := cmd.Flags()
	if err := loadEnv(fs); err != nil {
		return err
	}
	if path, _ := fs.GetString("config"); path != "" && schema != nil {
		if err := loadFile(fs, schema, path); err != nil {
			return err
		}
	}
	return loadSecrets(fs)
}

// loadEnv sets every setting not given as a flag from its variable.
func loadEnv(fs *pflag.FlagSet) error {
	var err error
	fs.VisitAll(func(fl *pflag.Flag) {
		if err != nil {
			return
		}
		if fl.Changed {
			annotate(fl, annSource, "--"+fl.Name)
			return
		}
		if !isSetting(fl) {
			return
		}
		env := EnvName(fl.Name)
		v, ok := os.LookupEnv(env)
		if !ok {
			return
		}
		if e := fl.Value.Set(v); e != nil {
			err = Usagef("environment variable %s: %s", env, badValue(fl, v, e))
			return
		}
		annotate(fl, annSource, env)
	})
	return err
}

// loadSecrets reads each *-file flag that was set into its secret.
func loadSecrets(fs *pflag.FlagSet) error {
	var err error
	fs.VisitAll(func(file *pflag.Flag) {
		name := annotation(file, annSecretOf)
		if err != nil || name == "" || file.Value.String() == "" {
			return
		}
		secret := fs.Lookup(name)
		fileSrc := source(file)
		if src := source(secret); src != "" {
			err = Usagef("%s and %s both set the %s; give one of them", src, fileSrc, name)
			return
		}
		b, e := os.ReadFile(file.Value.String())
		if e != nil {
			err = Usagef("%s: %v", fileSrc, e)
			return
		}
		v := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if e := secret.Value.Set(v); e != nil {
			err = Usagef("%s: %v", fileSrc, e)
			return
		}
		annotate(secret, annSource, fileSrc)
	})
	return err
}

// badValue says in the user's terms why v does not fit fl.
func badValue(fl *pflag.Flag, v string, err error) string {
	switch fl.Value.Type() {
	case "duration":
		return fmt.Sprintf("%q is not a duration; write it like 12h, 90m or 30s", v)
	case "bool":
		return fmt.Sprintf("%q is not true or false", v)
	case "int", "int64", "uint", "uint16", "uint32", "uint64":
		if errors.Is(err, strconv.ErrRange) {
			return fmt.Sprintf("%q is out of range", v)
		}
		return fmt.Sprintf("%q is not a whole number", v)
	}
	return err.Error()
}

// Where names where the value of flag name came from: "--name",
// "MOAT_NAME", "FILE:LINE: name", or "--name (default)".
func Where(cmd *cobra.Command, name string) string {
	if src := source(cmd.Flags().Lookup(name)); src != "" {
		return src
	}
	return "--" + name + " (default)"
}

// Invalid reports a setting whose value the command cannot use, naming
// where the value came from.
func Invalid(cmd *cobra.Command, name, format string, args ...any) error {
	return Usagef("%s: %s", Where(cmd, name), fmt.Sprintf(format, args...))
}

// Required returns a usage error for the first of names that is empty,
// saying every way to set it.
func Required(cmd *cobra.Command, names ...string) error {
	for _, name := range names {
		fl := cmd.Flags().Lookup(name)
		if fl.Value.String() != "" {
			continue
		}
		ways := []string{"--" + name}
		if isSetting(fl) {
			ways = append(ways, EnvName(name))
			if cmd.Annotations[annConfig] != "" {
				ways = append(ways, `"`+name+`" in the --config file`)
			}
		}
		return Usagef("%s is required: set %s", name, strings.Join(ways, ", or "))
	}
	return nil
}

func isSetting(fl *pflag.Flag) bool { return annotation(fl, annSetting) != "" }

func source(fl *pflag.Flag) string { return annotation(fl, annSource) }

func annotation(fl *pflag.Flag, key string) string {
	if fl == nil || len(fl.Annotations[key]) == 0 {
		return ""
	}
	return fl.Annotations[key][0]
}

func annotate(fl *pflag.Flag, key, value string) {
	if fl.Annotations == nil {
		fl.Annotations = map[string][]string{}
	}
	fl.Annotations[key] = []string{value}
}
