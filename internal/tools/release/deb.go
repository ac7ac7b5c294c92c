package main

import (
	"bytes"
	"embed"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
)

// debian holds the maintainer scripts (templates) and the settings
// files the packages install as conffiles.
//
//go:embed debian
var debian embed.FS

// maintainer is the packages' Maintainer field. The project has no
// mail address yet (security reports go through GitHub's advisories,
// SECURITY.md), hence the reserved .invalid domain until it has one.
const maintainer = "moat maintainers <maintainers@moatmesh.invalid>"

// pkg is one Debian package: a binary and, for a service, its unit,
// system user, state directory and settings file.
type pkg struct {
	Name        string
	Description string
	Depends     []string
	Recommends  []string
	Suggests    []string
	// Service is set for the daemons.
	Service *service
}

// service is what a daemon's package adds to its binary.
type service struct {
	Unit     string // the unit's name in deploy/systemd (and /usr/lib/systemd/system)
	User     string // the system user (deploy/sysusers/NAME.conf)
	Home     string // its home and state directory (deploy/sysusers/NAME.tmpfiles)
	Env      string // the settings file under /etc/moat, a conffile
	EnvMode  os.FileMode
	EnvGroup string // the group that may read Env ("" = root)
	// Edits turns deploy/systemd's unit (for /usr/local, as install.sh
	// writes it) into the packaged one: each old string must be there.
	Edits []string
}

// packages are the Debian packages `make release` builds, for every
// Linux architecture it builds.
var packages = []pkg{
	{
		Name:        "moat-coordinator",
		Description: "moat coordinator: the control plane of a private WireGuard mesh for LLMs\n sign-in (OIDC, MFA), policy, netmaps, relay and audit for moat members.",
		Depends:     []string{"systemd-sysusers | adduser"},
		Recommends:  []string{"ca-certificates"},
		Suggests:    []string{"caddy | nginx", "postgresql"},
		Service: &service{Unit: "moat-coordinator.service", User: "moat", Home: "/var/lib/moat-coordinator",
			Env: "/etc/moat/coordinator.env", EnvMode: 0o640, EnvGroup: "moat",
			Edits: []string{"/usr/local/bin/moat-coordinator", "/usr/bin/moat-coordinator"}},
	},
	{
		Name:        "moat-node",
		Description: "moat node: serves a GPU host's models on the moat mesh\n WireGuard mesh member with the model guard and the nftables lockdown.",
		Depends:     []string{"nftables", "systemd-sysusers | adduser"},
		Recommends:  []string{"ca-certificates"},
		Service: &service{Unit: "moat-node.service", User: "moat-node", Home: "/var/lib/moat-node",
			Env: "/etc/moat/node.env", EnvMode: 0o600,
			Edits: []string{"/usr/local/bin/moat-node", "/usr/bin/moat-node", "/etc/moat-node/env", "/etc/moat/node.env"}},
	},
	{
		Name:        "moat",
		Description: "moat client: an employee device on the moat mesh\n signs in, joins the mesh and serves a local OpenAI/Ollama endpoint.",
		Recommends:  []string{"ca-certificates"},
	},
}

// debCmd builds the packages: release deb -root REPO -bin DIR -out DIR
// -version V [-arch amd64,arm64]. DIR holds CMD-linux-ARCH binaries as
// release.sh builds them.
func debCmd(args []string) error {
	fs := flag.NewFlagSet("deb", flag.ContinueOnError)
	root := fs.String("root", ".", "the moat repository (deploy/ is read from it)")
	bin := fs.String("bin", "", "the directory with CMD-linux-ARCH binaries")
	out := fs.String("out", "", "where to write the .deb files")
	version := fs.String("version", "", "the release version (v1.2.3)")
	archs := fs.String("arch", "amd64,arm64", "the architectures, comma-separated")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *bin == "" || *out == "" || *version == "" {
		return errors.New("usage: release deb -root REPO -bin DIR -out DIR -version V [-arch amd64,arm64]")
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	for _, arch := range strings.Split(*archs, ",") {
		for _, p := range packages {
			path, err := buildDeb(p, *root, *bin, *out, *version, arch)
			if err != nil {
				return fmt.Errorf("%s %s: %w", p.Name, arch, err)
			}
			fmt.Println(path)
		}
	}
	return nil
}

// buildDeb writes one package into out and returns its path.
func buildDeb(p pkg, root, bin, out, version, arch string) (string, error) {
	stage, err := os.MkdirTemp("", "moat-deb-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(stage)
	info := &nfpm.Info{
		Name: p.Name, Arch: arch, Platform: "linux", Version: debVersion(version), VersionSchema: "none",
		Section: "net", Priority: "optional", Maintainer: maintainer,
		Description: p.Description, Vendor: "moat", Homepage: "https://github.com/moatmesh/moat", License: "Apache-2.0",
		MTime: time.Unix(0, 0).UTC(),
		Overridables: nfpm.Overridables{
			Depends: p.Depends, Recommends: p.Recommends, Suggests: p.Suggests, Umask: 0o022,
			Contents: files.Contents{
				{Source: filepath.Join(bin, p.Name+"-linux-"+arch), Destination: "/usr/bin/" + p.Name, FileInfo: mode(0o755)},
				{Source: filepath.Join(root, "LICENSE"), Destination: "/usr/share/doc/" + p.Name + "/copyright", FileInfo: mode(0o644)},
			},
		},
	}
	if p.Service != nil {
		if err := addService(info, p, root, stage); err != nil {
			return "", err
		}
	}
	path := filepath.Join(out, deb.Default.ConventionalFileName(info))
	var buf bytes.Buffer
	if err := deb.Default.Package(info, &buf); err != nil {
		return "", err
	}
	return path, os.WriteFile(path, buf.Bytes(), 0o644)
}

// addService adds a daemon's unit, sysusers.d and tmpfiles.d files, its
// settings file (a conffile) and the maintainer scripts.
func addService(info *nfpm.Info, p pkg, root, stage string) error {
	s := p.Service
	unit, err := os.ReadFile(filepath.Join(root, "deploy/systemd", s.Unit))
	if err != nil {
		return err
	}
	for i := 0; i < len(s.Edits); i += 2 {
		if !bytes.Contains(unit, []byte(s.Edits[i])) {
			return fmt.Errorf("deploy/systemd/%s no longer has %q to make it %q", s.Unit, s.Edits[i], s.Edits[i+1])
		}
		unit = bytes.ReplaceAll(unit, []byte(s.Edits[i]), []byte(s.Edits[i+1]))
	}
	staged := map[string][]byte{"unit": unit}
	if staged["env"], err = debian.ReadFile("debian/" + filepath.Base(s.Env)); err != nil {
		return err
	}
	for _, script := range []string{"postinst", "prerm", "postrm"} {
		if staged[script], err = maintainerScript(script, p); err != nil {
			return err
		}
	}
	for name, b := range staged {
		if err := os.WriteFile(filepath.Join(stage, name), b, 0o644); err != nil {
			return err
		}
	}
	info.Contents = append(info.Contents,
		&files.Content{Source: filepath.Join(stage, "unit"), Destination: "/usr/lib/systemd/system/" + s.Unit, FileInfo: mode(0o644)},
		&files.Content{Source: filepath.Join(root, "deploy/sysusers", p.Name+".conf"), Destination: "/usr/lib/sysusers.d/" + p.Name + ".conf", FileInfo: mode(0o644)},
		&files.Content{Source: filepath.Join(root, "deploy/sysusers", p.Name+".tmpfiles"), Destination: "/usr/lib/tmpfiles.d/" + p.Name + ".conf", FileInfo: mode(0o644)},
		&files.Content{Destination: "/etc/moat", Type: files.TypeDir, FileInfo: mode(0o755)},
		&files.Content{Source: filepath.Join(stage, "env"), Destination: s.Env, Type: files.TypeConfigNoReplace, FileInfo: mode(s.EnvMode)},
	)
	info.Scripts = nfpm.Scripts{PostInstall: filepath.Join(stage, "postinst"),
		PreRemove: filepath.Join(stage, "prerm"), PostRemove: filepath.Join(stage, "postrm")}
	return nil
}

// maintainerScript fills in debian/NAME.tmpl for p.
func maintainerScript(name string, p pkg) ([]byte, error) {
	t, err := template.ParseFS(debian, "debian/"+name+".tmpl")
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	err = t.Execute(&b, p)
	return b.Bytes(), err
}

func mode(m os.FileMode) *files.ContentFileInfo {
	return &files.ContentFileInfo{Mode: m, Owner: "root", Group: "root"}
}

var (
	semverRe   = regexp.MustCompile(`^v?([0-9]+\.[0-9]+\.[0-9]+)(?:-([0-9A-Za-z.]+))?(?:-([0-9]+)-g([0-9a-f]+))?(-dirty)?$`)
	debVerSafe = regexp.MustCompile(`[^0-9A-Za-z.+~]+`)
)

// debVersion turns a release version into a Debian one that sorts the
// same way: v1.2.3 → 1.2.3, v1.2.3-rc.1 → 1.2.3~rc.1 (before 1.2.3),
// git describe's v1.2.3-4-gabc → 1.2.3+4.gabc (after it); anything else
// (a bare commit, "dev") → 0.0.0~VERSION, before every release.
func debVersion(v string) string {
	m := semverRe.FindStringSubmatch(v)
	if m == nil {
		return "0.0.0~" + strings.Trim(debVerSafe.ReplaceAllString(v, "."), ".")
	}
	out := m[1]
	if m[2] != "" {
		out += "~" + m[2]
	}
	if m[3] != "" {
		out += "+" + m[3] + ".g" + m[4]
	}
	if m[5] != "" {
		out += "+dirty"
	}
	return out
}
