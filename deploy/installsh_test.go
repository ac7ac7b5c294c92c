package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moatmesh/moat/deploy"
)

// startingScript drives install.sh's starting() through the states a
// node started with nohup passes: the shell's fork before any exec, a
// process running, a process that died, and pid files that name no child
// of this shell. It prints one word per check.
const startingScript = `
set +e
PIDFILE=$DIR/pid
check() { if starting; then echo "$1=alive"; else echo "$1=dead"; fi; }

( sleep 5; : ) >/dev/null 2>&1 & echo $! >"$PIDFILE"
check fork
fork=$!

sleep 30 >/dev/null 2>&1 & echo $! >"$PIDFILE"
check exec
kill $! $fork
i=0
while starting && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
check died

echo 1 >"$PIDFILE"
check init
echo nonsense >"$PIDFILE"
check garbage
rm -f "$PIDFILE"
check nofile
`

// TestInstallStarting holds the install script's liveness check for a
// node it has just started: alive from the fork on, whatever the process
// is exec'ing (a check that named nohup and setpriv missed the shell's
// own fork), and dead once it exits or when the pid is not its child.
func TestInstallStarting(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	lib := strings.TrimSuffix(strings.TrimRight(deploy.InstallScript, "\n"), `main "$@"`)
	if lib == deploy.InstallScript {
		t.Fatal(`install.sh no longer ends with main "$@"; update this test`)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "lib.sh")
	if err := os.WriteFile(path, []byte(lib), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sh, "-c", ". "+path+"\n"+startingScript)
	cmd.Env = append(os.Environ(), "DIR="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("script: %v\n%s", err, out)
	}
	want := "fork=alive exec=alive died=dead init=dead garbage=dead nofile=dead"
	if got := strings.Join(strings.Fields(string(out)), " "); got != want {
		t.Errorf("starting() said\n  %s\nwant\n  %s", got, want)
	}
}
