package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/moatmesh/moat/coordinator"
	"github.com/moatmesh/moat/coordinator/idp"
	"github.com/moatmesh/moat/coordinator/seal"
	"github.com/moatmesh/moat/internal/cli"
)

func rotateCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "rotate", Short: "Replace the embedded provider's signing key or the seal key"}
	cmd.AddCommand(rotateIdPKeyCommand(), rotateSealKeyCommand())
	return cmd
}

func rotateIdPKeyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "idp-key",
		Short: "Make a new signing key for the embedded identity provider",
		Long: fmt.Sprintf(`Make a new signing key for the embedded identity provider. Every replica
signs with it from its next sign-in on (they read the keys from the
database); the old keys stay in the published key set for %s, until the
tokens they signed have expired, and are pruned after. The servers keep
running.`, idp.RetiredKeyKept),
		Args: cli.Args(0, 0, ""),
	}
	st := opsCommand(cmd, nil)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := st.config(cmd)
		if err != nil {
			return err
		}
		kid, err := coordinator.RotateIdPKey(cmd.Context(), cfg)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "New signing key %s; the old ones verify for another %s.\n", kid, idp.RetiredKeyKept)
		return nil
	}
	return cmd
}

func rotateSealKeyCommand() *cobra.Command {
	var newFile string
	cmd := &cobra.Command{
		Use:   "seal-key --new-seal-key-file FILE",
		Short: "Re-seal every secret in the database under a new seal key",
		Long: `Re-seal every sealed value in the database (TOTP secrets, the embedded
provider's keys, the TLS key, sign-ins in progress, audit checkpoints,
people's prompt keys) under the key in
--new-seal-key-file, made there when the file does not exist, in one
transaction. The current key is the one serve uses (--seal-key-file,
MOAT_SEAL_KEY or the data dir's seal.key).

Stop every replica first: one still running on the old key would seal new
values under it. Then start them all with the new key. When the current
key is the data dir's seal.key, the new key replaces it there and the old
one is kept as seal.key.old: keep it with the backups made before, which
only it opens. See docs/operations.md.`,
		Args: cli.Args(0, 0, ""),
	}
	cmd.Flags().StringVar(&newFile, "new-seal-key-file", "", "file holding the new seal key; made when it does not exist (required)")
	st := opsCommand(cmd, nil)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := cli.Required(cmd, "new-seal-key-file"); err != nil {
			return err
		}
		cfg, err := st.config(cmd)
		if err != nil {
			return err
		}
		newKey, err := seal.LoadOrCreateKey(newFile)
		if err != nil {
			return cli.Invalid(cmd, "new-seal-key-file", "%v", err)
		}
		n, err := coordinator.RotateSealKey(cmd.Context(), cfg, newKey)
		if err != nil {
			return err
		}
		w := cmd.OutOrStdout()
		fmt.Fprintf(w, "Re-sealed %d values under seal key %s.\n", n, seal.KeyID(newKey))
		if cfg.SealKeySource != "" {
			fmt.Fprintf(w, "Start every replica with the new key, %s.\n", newFile)
			return nil
		}
		dir := st.dataDir
		if err := replaceKeyFile(dir, newKey); err != nil {
			return fmt.Errorf("the database is sealed under the new key in %s, but: %w; copy it to %s", newFile, err, filepath.Join(dir, coordinator.SealKeyFile))
		}
		fmt.Fprintf(w, "The new key is now %s; the old one is %s.old.\n", filepath.Join(dir, coordinator.SealKeyFile), coordinator.SealKeyFile)
		return nil
	}
	return cmd
}

// replaceKeyFile makes key the data dir's seal.key, keeping the old one
// as seal.key.old.
func replaceKeyFile(dir string, key [seal.KeySize]byte) error {
	path := filepath.Join(dir, coordinator.SealKeyFile)
	tmp := path + ".new"
	if err := os.WriteFile(tmp, key[:], 0o600); err != nil {
		return err
	}
	if err := os.Rename(path, path+".old"); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}
