package main

import (
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
)

// The repository: one suite, one component, as APT reads it.
const (
	aptSuite     = "stable"
	aptComponent = "main"
	aptKeyring   = "moat-archive-keyring" // .gpg (binary) and .asc
)

// aptCmd writes a signed APT repository:
//
//	release apt -key FILE [-valid 90d] -out DIR DEB...
//
// DIR gets pool/main/m/NAME/FILE.deb, dists/stable/main/binary-ARCH/
// Packages and Packages.gz, dists/stable/Release with Release.gpg and
// InRelease signed by the OpenPGP key derived from the release key
// (pgpkey.go), and that key's public half as moat-archive-keyring.gpg
// and .asc for APT's signed-by. Release carries Valid-Until, after which
// APT refuses it: a repository must be signed again before then.
func aptCmd(args []string) error {
	fs := flag.NewFlagSet("apt", flag.ContinueOnError)
	keyFile := fs.String("key", "", "the minisign secret key file (the release key)")
	out := fs.String("out", "", "the repository directory to write")
	valid := fs.String("valid", defaultValid, "how long the Release file is valid (Valid-Until): 90d, 720h")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *keyFile == "" || *out == "" || fs.NArg() == 0 {
		return errors.New("usage: release apt -key FILE [-valid 90d] -out DIR DEB...")
	}
	life, err := parseValid(*valid)
	if err != nil {
		return err
	}
	priv, err := signingKey(*keyFile, false)
	if err != nil {
		return err
	}
	e, err := aptEntity(priv)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	if err := writeRepo(*out, fs.Args(), e, now, now.Add(life)); err != nil {
		return err
	}
	fmt.Printf("APT repository %s signed by OpenPGP key %X (from release key %X), valid until %s\n",
		*out, e.PrimaryKey.Fingerprint, priv.ID(), now.Add(life).Format(time.RFC3339))
	return nil
}

// writeRepo lays the repository out and signs it.
func writeRepo(out string, debs []string, e *openpgp.Entity, date, until time.Time) error {
	byArch := map[string][]string{}
	for _, d := range debs {
		stanza, arch, err := poolDeb(out, d)
		if err != nil {
			return fmt.Errorf("%s: %w", d, err)
		}
		byArch[arch] = append(byArch[arch], stanza)
	}
	var archs []string
	var indexes []string // paths under dists/stable
	for arch, stanzas := range byArch {
		archs = append(archs, arch)
		slices.Sort(stanzas)
		dir := path.Join(aptComponent, "binary-"+arch)
		packages := []byte(strings.Join(stanzas, "\n"))
		gz, err := gzipBytes(packages)
		if err != nil {
			return err
		}
		for name, b := range map[string][]byte{"Packages": packages, "Packages.gz": gz} {
			if err := writeFile(filepath.Join(out, "dists", aptSuite, dir, name), b); err != nil {
				return err
			}
			indexes = append(indexes, path.Join(dir, name))
		}
	}
	slices.Sort(archs)
	slices.Sort(indexes)
	release, err := releaseFile(filepath.Join(out, "dists", aptSuite), indexes, archs, date, until)
	if err != nil {
		return err
	}
	return signRelease(out, release, e)
}

// poolDeb copies a package into the pool and returns its Packages stanza.
func poolDeb(out, debPath string) (stanza, arch string, err error) {
	b, err := os.ReadFile(debPath)
	if err != nil {
		return "", "", err
	}
	control, err := debControl(b)
	if err != nil {
		return "", "", err
	}
	name, arch := controlField(control, "Package"), controlField(control, "Architecture")
	if name == "" || arch == "" {
		return "", "", errors.New("control file without Package or Architecture")
	}
	rel := path.Join("pool", aptComponent, name[:1], name, filepath.Base(debPath))
	if err := writeFile(filepath.Join(out, rel), b); err != nil {
		return "", "", err
	}
	stanza = fmt.Sprintf("%s\nFilename: %s\nSize: %d\nMD5sum: %x\nSHA1: %x\nSHA256: %x\n",
		strings.TrimRight(control, "\n"), rel, len(b), md5.Sum(b), sha1.Sum(b), sha256.Sum256(b))
	return stanza, arch, nil
}

// releaseFile writes dists/stable/Release over the indexes and returns it.
func releaseFile(dist string, indexes, archs []string, date, until time.Time) ([]byte, error) {
	const rfc2822 = "Mon, 02 Jan 2006 15:04:05 UTC"
	var r bytes.Buffer
	fmt.Fprintf(&r, "Origin: moat\nLabel: moat\nSuite: %s\nCodename: %s\n", aptSuite, aptSuite)
	fmt.Fprintf(&r, "Date: %s\nValid-Until: %s\n", date.Format(rfc2822), until.Format(rfc2822))
	fmt.Fprintf(&r, "Architectures: %s\nComponents: %s\n", strings.Join(archs, " "), aptComponent)
	r.WriteString("Description: moat releases, signed with the key derived from the release key\n")
	var md5s, sha256s bytes.Buffer
	for _, idx := range indexes {
		b, err := os.ReadFile(filepath.Join(dist, filepath.FromSlash(idx)))
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&md5s, " %x %d %s\n", md5.Sum(b), len(b), idx)
		fmt.Fprintf(&sha256s, " %x %d %s\n", sha256.Sum256(b), len(b), idx)
	}
	r.WriteString("MD5Sum:\n")
	r.Write(md5s.Bytes())
	r.WriteString("SHA256:\n")
	r.Write(sha256s.Bytes())
	return r.Bytes(), writeFile(filepath.Join(dist, "Release"), r.Bytes())
}

// signRelease writes Release.gpg (detached, armored), InRelease
// (clearsigned) and the public key.
func signRelease(out string, release []byte, e *openpgp.Entity) error {
	dist := filepath.Join(out, "dists", aptSuite)
	var detached bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&detached, e, bytes.NewReader(release), signConfig()); err != nil {
		return err
	}
	var inline bytes.Buffer
	w, err := clearsign.Encode(&inline, e.PrivateKey, signConfig())
	if err != nil {
		return err
	}
	if _, err := w.Write(release); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	bin, asc, err := publicKey(e)
	if err != nil {
		return err
	}
	for name, b := range map[string][]byte{
		filepath.Join(dist, "Release.gpg"):    detached.Bytes(),
		filepath.Join(dist, "InRelease"):      append(inline.Bytes(), '\n'),
		filepath.Join(out, aptKeyring+".gpg"): bin,
		filepath.Join(out, aptKeyring+".asc"): asc,
	} {
		if err := writeFile(name, b); err != nil {
			return err
		}
	}
	return nil
}

// controlField returns a single-line field of a control file.
func controlField(control, name string) string {
	for _, line := range strings.Split(control, "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func gzipBytes(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	w, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(b); err != nil {
		return nil, err
	}
	err = w.Close()
	return buf.Bytes(), err
}

// writeFile writes b, making the directories it needs.
func writeFile(name string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	return os.WriteFile(name, b, 0o644)
}
