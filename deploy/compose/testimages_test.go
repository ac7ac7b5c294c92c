package compose_test

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// The images the test puts in the place of those a user pulls
// (postgres:17, caddy:2, ollama/ollama), which cannot be pulled here:
// FROM scratch, made of this host's Debian binaries and the libraries
// ldd names, or of the stand-in model. They behave as the official images
// do where compose.yaml relies on it: postgres's POSTGRES_* variables,
// data directory and pg_isready; caddy's /etc/caddy/Caddyfile, /data
// and /config; a model on 127.0.0.1:11434.

// buildTestImages builds the three images and returns their tags.
func buildTestImages(t *testing.T, e *engine, dir string) (postgres, caddy, model string) {
	t.Helper()
	postgres, caddy, model = "moat-test/postgres:test", "moat-test/caddy:test", "moat-test/model:test"
	e.build(t, postgres, postgresContext(t, filepath.Join(dir, "postgres")))
	e.build(t, caddy, caddyContext(t, filepath.Join(dir, "caddy")))
	e.build(t, model, modelContext(t, filepath.Join(dir, "model")))
	return postgres, caddy, model
}

// build builds the context ctx (its Dockerfile) as tag.
func (e *engine) build(t *testing.T, tag, ctx string) {
	t.Helper()
	if _, err := e.docker("build", "-q", "-t", tag, ctx); err != nil {
		t.Fatal(err)
	}
}

const postgresEntrypoint = `#!/bin/sh
# As the official image: a cluster for POSTGRES_USER with POSTGRES_PASSWORD
# and the database POSTGRES_DB on first start, then the server.
set -e
data=/var/lib/postgresql/data
if [ ! -s "$data/PG_VERSION" ]; then
	echo "$POSTGRES_PASSWORD" >/tmp/pwfile
	initdb -D "$data" -U "$POSTGRES_USER" --pwfile=/tmp/pwfile -E UTF8 --no-locale \
		--auth-local=trust --auth-host=scram-sha-256 --no-sync >/tmp/initdb.log
	echo "CREATE DATABASE \"$POSTGRES_DB\" OWNER \"$POSTGRES_USER\";" | postgres --single -D "$data" postgres >/dev/null
	echo "listen_addresses = '*'" >>"$data/postgresql.conf"
	echo "host all all all scram-sha-256" >>"$data/pg_hba.conf"
fi
exec postgres -D "$data"
`

func postgresContext(t *testing.T, ctx string) string {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(bins) == 0 {
		t.Fatal("no /usr/lib/postgresql/*/bin/postgres (apt-get install postgresql)")
	}
	sort.Strings(bins)
	bin := filepath.Dir(bins[len(bins)-1])
	version := filepath.Base(filepath.Dir(bin))
	r := rootfs(t, ctx)
	for _, f := range []string{"postgres", "initdb", "pg_isready"} {
		r.binary(filepath.Join(bin, f))
	}
	r.binary("/bin/sh")
	r.tree(filepath.Join("/usr/lib/postgresql", version, "lib"), true)
	r.tree(filepath.Join("/usr/share/postgresql", version), false)
	r.tree("/usr/share/zoneinfo", false)
	r.write("docker-entrypoint.sh", postgresEntrypoint, 0o755)
	r.write("etc/passwd", "root:x:0:0::/:/bin/sh\npostgres:x:999:999::/var/lib/postgresql:/bin/sh\n", 0o644)
	r.write("etc/group", "root:x:0:\npostgres:x:999:\n", 0o644)
	for _, d := range []string{"var/lib/postgresql/data", "var/run/postgresql"} {
		if err := os.MkdirAll(filepath.Join(ctx, "owned", d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	writeDockerfile(t, ctx, fmt.Sprintf(`FROM scratch
COPY rootfs/ /
COPY --chown=999:999 owned/ /
ENV PATH=%s:/bin TZ=UTC
USER 999:999
ENTRYPOINT ["/docker-entrypoint.sh"]
`, bin))
	return ctx
}

func caddyContext(t *testing.T, ctx string) string {
	t.Helper()
	r := rootfs(t, ctx)
	bin, err := exec.LookPath("caddy")
	if err != nil {
		t.Fatal(err)
	}
	r.binary(bin)
	for _, d := range []string{"data", "config", "etc/caddy"} {
		r.dir(d, 0o755)
	}
	writeDockerfile(t, ctx, fmt.Sprintf(`FROM scratch
COPY rootfs/ /
ENV XDG_DATA_HOME=/data XDG_CONFIG_HOME=/config HOME=/tmp
ENTRYPOINT [%q]
CMD ["run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]
`, bin))
	return ctx
}

func modelContext(t *testing.T, ctx string) string {
	t.Helper()
	rootfs(t, ctx)
	out := filepath.Join(ctx, "rootfs", "standin")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, "./standin")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the stand-in model: %v\n%s", err, b)
	}
	writeDockerfile(t, ctx, "FROM scratch\nCOPY rootfs/ /\nUSER 65532:65532\nENTRYPOINT [\"/standin\"]\n")
	return ctx
}

// fsTree is an image's root file system being put together on the host.
type fsTree struct {
	t    *testing.T
	root string
}

// rootfs starts ctx/rootfs with an empty /tmp.
func rootfs(t *testing.T, ctx string) *fsTree {
	r := &fsTree{t: t, root: filepath.Join(ctx, "rootfs")}
	r.dir("tmp", 0o777|os.ModeSticky)
	return r
}

func (r *fsTree) dir(path string, mode os.FileMode) {
	p := filepath.Join(r.root, path)
	if err := os.MkdirAll(p, 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		r.t.Fatal(err)
	}
}

func (r *fsTree) write(path, text string, mode os.FileMode) {
	p := filepath.Join(r.root, path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), mode); err != nil {
		r.t.Fatal(err)
	}
}

// copy puts the host's file at the same path (its content, when it is a
// symbolic link), keeping its mode.
func (r *fsTree) copy(path string) {
	dst := filepath.Join(r.root, path)
	if _, err := os.Lstat(dst); err == nil {
		return
	}
	src, err := os.Open(path)
	if err != nil {
		r.t.Fatal(err)
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		r.t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		r.t.Fatal(err)
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, fi.Mode().Perm())
	if err != nil {
		r.t.Fatal(err)
	}
	defer out.Close()
	if _, err := io.Copy(out, src); err != nil {
		r.t.Fatal(err)
	}
}

// lddPath finds the libraries (and the loader) in ldd's output.
var lddPath = regexp.MustCompile(`(?m)(?:=> |^\s+)(/\S+)`)

// binary copies an ELF file with every library it loads.
func (r *fsTree) binary(path string) {
	r.copy(path)
	out, err := exec.Command("ldd", path).CombinedOutput()
	if err != nil && !strings.Contains(string(out), "not a dynamic executable") {
		r.t.Fatalf("ldd %s: %v\n%s", path, err, out)
	}
	for _, m := range lddPath.FindAllStringSubmatch(string(out), -1) {
		r.copy(m[1])
	}
}

// tree copies a directory; with libs, every shared object in it with its
// libraries.
func (r *fsTree) tree(root string, libs bool) {
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		switch {
		case libs && strings.HasPrefix(d.Name(), "llvmjit"): // JIT: off without it, and LLVM is large
		case libs && strings.HasSuffix(p, ".so"):
			r.binary(p)
		case libs: // bitcode for the JIT
		case d.Type()&os.ModeSymlink != 0 && isDir(p): // e.g. zoneinfo/posix → .
		case d.Type().IsRegular() || d.Type()&os.ModeSymlink != 0:
			r.copy(p)
		}
		return nil
	})
	if err != nil {
		r.t.Fatal(err)
	}
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

func writeDockerfile(t *testing.T, ctx, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
