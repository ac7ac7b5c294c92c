package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/moatmesh/moat/coordinator"
	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/internal/cli"
)

func backupCommand() *cobra.Command {
	var (
		out         string
		withSealKey bool
	)
	cmd := &cobra.Command{
		Use:   "backup --out FILE",
		Short: "Write a consistent backup of the coordinator's SQLite database while it runs",
		Long: `Write a consistent snapshot of the embedded SQLite database, which holds
every person, device, node, policy version, audit record and, sealed,
the coordinator's own secrets, to FILE (mode 0600). The coordinator may
keep running.

The seal key is not in the backup unless --with-seal-key is given; without
it the backup cannot be restored, so keep the key (the data dir's
seal.key or your --seal-key-file) in a second place, apart from the
backups. PostgreSQL is backed up with pg_dump; see docs/operations.md.`,
		Args: cli.Args(0, 0, ""),
	}
	cmd.Flags().StringVar(&out, "out", "", "file to write; it must not exist (required)")
	cmd.Flags().BoolVar(&withSealKey, "with-seal-key", false, "put the seal key in the backup too, so that it alone restores everything (keep it as safe as the key)")
	st := opsCommand(cmd, nil)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := cli.Required(cmd, "out"); err != nil {
			return err
		}
		cfg, err := st.config(cmd)
		if err != nil {
			return err
		}
		info, err := coordinator.Backup(cmd.Context(), cfg, out, withSealKey)
		if errors.Is(err, store.ErrNoSnapshot) {
			return cli.Usagef("%v", store.ErrNoSnapshot)
		}
		if err != nil {
			return err
		}
		key := "not included: keep the seal key " + info.SealKeyID + " apart from the backups"
		if info.WithSealKey {
			key = "included"
		}
		fmt.Fprintf(cmd.OutOrStdout(), "Backup %s: schema version %d, seal key %s.\n", out, info.SchemaVersion, key)
		return nil
	}
	return cmd
}
