package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/moatmesh/moat/coordinator"
	"github.com/moatmesh/moat/coordinator/seal"
	"github.com/moatmesh/moat/internal/cli"
)

// sealKeySettings name the seal key every replica shares. Neither given:
// the data dir's seal.key, the single-machine default.
type sealKeySettings struct {
	file, text string
}

func (s *sealKeySettings) register(fs *pflag.FlagSet) {
	fs.StringVar(&s.file, "seal-key-file", "", "file holding the seal key (32 raw bytes, or base64 or hex on one line; mode 0600) that seals the coordinator's secrets in the database; every replica needs the same one; empty: seal.key in the data dir")
	fs.StringVar(&s.text, "seal-key", "", "the seal key in base64 or hex, instead of --seal-key-file (prefer the variable to the flag, which shows in the process list)")
}

// apply puts the seal key into cfg, naming where it came from.
func (s *sealKeySettings) apply(cmd *cobra.Command, cfg *coordinator.Config) error {
	switch {
	case s.file != "" && s.text != "":
		return cli.Usagef("%s and %s both give the seal key; give one of them", cli.Where(cmd, "seal-key-file"), cli.Where(cmd, "seal-key"))
	case s.file != "":
		key, err := seal.LoadKey(s.file)
		if err != nil {
			return cli.Invalid(cmd, "seal-key-file", "%v", err)
		}
		cfg.SealKey, cfg.SealKeySource = key, fmt.Sprintf("%s %s", cli.Where(cmd, "seal-key-file"), s.file)
	case s.text != "":
		key, err := seal.ParseKey([]byte(s.text))
		if err != nil {
			return cli.Invalid(cmd, "seal-key", "the key %v", err)
		}
		cfg.SealKey, cfg.SealKeySource = key, cli.Where(cmd, "seal-key")
	}
	return nil
}
