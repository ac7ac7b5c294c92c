package main

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/moatmesh/moat/internal/cli"
	"github.com/moatmesh/moat/internal/cli/clitest"
)

// TestOpsCommands runs init, backup, restore and rotate as an operator
// would, with the built binary.
func TestOpsCommands(t *testing.T) {
	bin := clitest.Build(t, "github.com/moatmesh/moat/cmd/moat-coordinator")
	run := func(env []string, args ...string) clitest.Result { return clitest.Run(t, bin, env, args...) }
	tmp := t.TempDir()
	data, key := filepath.Join(tmp, "data"), filepath.Join(tmp, "seal.key")
	idRE := regexp.MustCompile(`Seal key ([0-9a-f]{16}) `)

	// init makes the key where it is asked to, once.
	r := run(nil, "init", "--data-dir", data, "--seal-key-file", key, "--tls", "self-signed", "--public-url", "https://moat.example")
	r.Want(t, 0, []string{"(made): --seal-key-file " + key, "Self-signed certificate fingerprint"}, nil)
	id := idRE.FindStringSubmatch(r.Stdout)[1]
	run(nil, "init", "--data-dir", data, "--seal-key-file", key).Want(t, 0, []string{"Seal key " + id + " (in use)"}, nil)
	if _, err := os.Stat(filepath.Join(data, "seal.key")); !os.IsNotExist(err) {
		t.Fatal("init wrote a seal.key into the data dir although --seal-key-file was given")
	}
	raw, _ := os.ReadFile(key)
	run([]string{"MOAT_SEAL_KEY=" + base64.StdEncoding.EncodeToString(raw)}, "init", "--data-dir", data).Want(t, 0, []string{"Seal key " + id}, nil)
	run([]string{"MOAT_SEAL_KEY=" + base64.StdEncoding.EncodeToString(raw)}, "init", "--data-dir", data, "--seal-key-file", key).
		Want(t, cli.ExitUsage, nil, []string{"--seal-key-file and MOAT_SEAL_KEY both give the seal key"})
	run(nil, "init", "--data-dir", data).Want(t, cli.ExitFailure, nil, []string{"seal key missing", id, "--seal-key-file"})

	// backup and restore, with the key kept apart.
	run(nil, "users", "add", "--data-dir", data, "--public-url", "https://moat.example", "alice@example.com").Want(t, 0, nil, nil)
	backup := filepath.Join(tmp, "moat.backup")
	run(nil, "backup", "--data-dir", data, "--seal-key-file", key, "--out", backup).Want(t, 0, []string{"seal key not included"}, nil)
	restored := filepath.Join(tmp, "restored")
	run(nil, "restore", "--data-dir", restored, backup).Want(t, cli.ExitFailure, nil, []string{"seal key missing", id})
	run(nil, "restore", "--data-dir", restored, "--seal-key-file", key, backup).Want(t, 0, []string{"seal key " + id, restored}, nil)
	run(nil, "users", "list", "--data-dir", restored).Want(t, 0, []string{"alice@example.com"}, nil)
	run(nil, "backup", "--database", "postgres://u@127.0.0.1:1/x", "--out", filepath.Join(tmp, "pg.backup")).
		Want(t, cli.ExitFailure, nil, []string{"127.0.0.1:1"})

	// rotation
	run(nil, "rotate", "idp-key", "--data-dir", data, "--seal-key-file", key).Want(t, 0, []string{"New signing key"}, nil)
	key2 := filepath.Join(tmp, "seal-2.key")
	run(nil, "rotate", "seal-key", "--data-dir", data, "--seal-key-file", key, "--new-seal-key-file", key2).Want(t, 0, []string{"Re-sealed", "Start every replica with the new key"}, nil)
	run(nil, "init", "--data-dir", data, "--seal-key-file", key).Want(t, cli.ExitFailure, nil, []string{"wrong seal key", id})
	run(nil, "init", "--data-dir", data, "--seal-key-file", key2).Want(t, 0, []string{"(in use)"}, nil)
	wantCLITrail(t, data, "init coordinator", "backup database", "secret.rotate idp-key", "secret.rotate seal-key")
	wantCLITrail(t, restored, "restore database")

	// the single-machine default: the data dir's seal.key is replaced,
	// the old one kept beside it.
	single := filepath.Join(tmp, "single")
	run(nil, "init", "--data-dir", single).Want(t, 0, []string{"(made): " + filepath.Join(single, "seal.key")}, nil)
	run(nil, "rotate", "seal-key", "--data-dir", single, "--new-seal-key-file", filepath.Join(tmp, "seal-3.key")).Want(t, 0, []string{"the old one is seal.key.old"}, nil)
	run(nil, "init", "--data-dir", single).Want(t, 0, []string{"(in use)"}, nil)
	if _, err := os.Stat(filepath.Join(single, "seal.key.old")); err != nil {
		t.Fatal(err)
	}
}
