package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/moatmesh/moat/mesh/client"
)

// resolveStateDir picks --state-dir, then $MOAT_STATE_DIR, then the user's
// config directory.
func resolveStateDir(flagValue string) (client.Dir, error) {
	dir := flagValue
	if dir == "" {
		dir = os.Getenv("MOAT_STATE_DIR")
	}
	if dir == "" {
		base, err := os.UserConfigDir()
		if err != nil {
			return "", fmt.Errorf("find the config directory: %w; set --state-dir or MOAT_STATE_DIR", err)
		}
		dir = filepath.Join(base, "moat")
	}
	return client.Dir(dir), nil
}
