package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/moatmesh/moat/coordinator"
	"github.com/moatmesh/moat/coordinator/seal"
	"github.com/moatmesh/moat/internal/cli"
)

// opsCommand gives cmd the settings of the commands that look after the
// coordinator's state beside its servers (init, backup, restore,
// rotate): the store and its seal key, plus what more adds, all read
// from the coordinator's --config file and variables as serve reads them.
func opsCommand(cmd *cobra.Command, more func(fs *pflag.FlagSet)) *storeSettings {
	s := new(storeSettings)
	fs := pflag.NewFlagSet(cmd.Name(), pflag.ContinueOnError)
	s.register(fs)
	s.sealKey.register(fs)
	if more != nil {
		more(fs)
	}
	cli.Settings(fs)
	cmd.Flags().AddFlagSet(fs)
	cli.ConfigFile(cmd, configSchema())
	return s
}

func initCommand() *cobra.Command {
	var publicURL, tlsMode string
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Make the coordinator's secrets once: the seal key, the embedded provider's keys and, with --tls self-signed, the certificate",
		Long: `Make the coordinator's own secrets once, before the first replica starts
(serve makes any that are missing on first start too):

  - the seal key, which seals every secret in the database: written to
    --seal-key-file when that file does not exist, else to seal.key in the
    data dir; every replica needs this key, and it is backed up apart
    from the database;
  - the embedded identity provider's client secret and signing key;
  - with --tls self-signed, the certificate every replica serves.

Everything but the seal key is kept in the database, sealed. Running init
again changes nothing. See docs/operations.md.`,
		Args: cli.Args(0, 0, ""),
	}
	st := opsCommand(cmd, func(fs *pflag.FlagSet) {
		fs.StringVar(&publicURL, "public-url", "", "URL people and devices reach the coordinator at, for the self-signed certificate's name")
		fs.StringVar(&tlsMode, "tls", "", `"self-signed" to make the certificate every replica serves`)
	})
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if tlsMode != "" && tlsMode != "self-signed" {
			return cli.Invalid(cmd, "tls", "%q: the only mode is self-signed", tlsMode)
		}
		if tlsMode != "" {
			if err := cli.Required(cmd, "public-url"); err != nil {
				return err
			}
			if err := checkPublicURL(cmd, publicURL); err != nil {
				return err
			}
		}
		made, err := createKeyFile(st.sealKey.file)
		if err != nil {
			return cli.Invalid(cmd, "seal-key-file", "%v", err)
		}
		cfg, err := st.config(cmd)
		if err != nil {
			return err
		}
		if cfg.SealKeySource == "" { // the data dir's, made by Init when missing
			_, err := os.Stat(filepath.Join(st.dataDir, coordinator.SealKeyFile))
			made = errors.Is(err, fs.ErrNotExist)
		}
		cfg.PublicURL = publicURL
		res, err := coordinator.Init(cmd.Context(), cfg, tlsMode != "")
		if err != nil {
			return err
		}
		printInit(cmd, cfg, st, made, res)
		return nil
	}
	return cmd
}

// createKeyFile makes a new seal key at path when path is set and does
// not exist yet, and says whether it did.
func createKeyFile(path string) (bool, error) {
	if path == "" {
		return false, nil
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	_, err := seal.LoadOrCreateKey(path)
	return err == nil, err
}

func printInit(cmd *cobra.Command, cfg coordinator.Config, st *storeSettings, made bool, res coordinator.Initialized) {
	w := cmd.OutOrStdout()
	where := cfg.SealKeySource
	if where == "" {
		where = filepath.Join(st.dataDir, coordinator.SealKeyFile)
	}
	state := "in use"
	if made {
		state = "made"
	}
	fmt.Fprintf(w, "Seal key %s (%s): %s\n", res.SealKeyID, state, where)
	fmt.Fprintf(w, "  Give every replica this key (--seal-key-file or MOAT_SEAL_KEY), and keep a copy\n  apart from the database backups: without it they cannot be restored.\n")
	fmt.Fprintf(w, "Embedded identity provider: client secret and signing key in the database.\n")
	if res.TLSFingerprint != "" {
		fmt.Fprintf(w, "Self-signed certificate fingerprint (pin it with --coordinator-fingerprint):\n  %s\n", res.TLSFingerprint)
	}
}
