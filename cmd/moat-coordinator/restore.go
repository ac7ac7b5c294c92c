package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/moatmesh/moat/coordinator"
	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/internal/cli"
)

func restoreCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "restore FILE",
		Short: "Restore a backup onto a fresh data dir",
		Long: `Restore a backup made by moat-coordinator backup into --data-dir, which
must hold no database yet, and check that the seal key opens it: the one
given with --seal-key-file or MOAT_SEAL_KEY, else the data dir's
seal.key, else the one in the backup (--with-seal-key). Then start serve
on that data dir with the same public URL: devices and nodes keep their
credentials. People erased after the backup was taken are erased again
from the erasure log (--erasure-log). PostgreSQL is restored with
pg_restore; see docs/operations.md.`,
		Args: cli.Args(1, 1, "the backup FILE"),
	}
	st := opsCommand(cmd, nil)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cfg, err := st.config(cmd)
		if err != nil {
			return err
		}
		info, err := coordinator.Restore(cmd.Context(), cfg, args[0])
		if errors.Is(err, store.ErrNoSnapshot) {
			return cli.Usagef("%v", store.ErrNoSnapshot)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "Restored the backup of %s (schema version %d, seal key %s) into %s; %d erasures made after it replayed from the erasure log.\n",
			info.Created.Format("2006-01-02 15:04:05 MST"), info.SchemaVersion, info.SealKeyID, st.dataDir, info.ErasuresReplayed)
		return nil
	}
	return cmd
}
