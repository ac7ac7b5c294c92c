// Command release signs moat's release files with a minisign key and
// builds its Debian packages and APT repository, for scripts/release.sh
// (`make release`):
//
//	release keygen PREFIX            writes PREFIX.key and PREFIX.pub
//	release sign -key FILE|-throwaway -version V [-valid 90d] FILE...
//	                                 writes FILE.minisig for each FILE and
//	                                 minisign.pub next to the first
//	release verify -pub FILE FILE... checks FILE.minisig for each FILE
//	release deb -root REPO -bin DIR -out DIR -version V
//	                                 the Debian packages (deb.go, nfpm)
//	release apt -key FILE [-valid 90d] -out DIR DEB...
//	                                 a signed APT repository (aptrepo.go)
//
// Signatures are minisign's legacy Ed25519 form ("Ed": the signature is
// over the file itself, not its BLAKE2b hash), which `minisign -V`
// verifies and which openssl's `pkeyutl -verify -rawin` verifies too, so
// that install.sh needs nothing beyond openssl. The trusted comment is
// the release manifest: file, version, date and expiry (manifest.go).
//
// A key file encrypted with a password (minisign -G, or keygen with
// MOAT_RELEASE_KEY_PASSWORD set) is decrypted with
// MOAT_RELEASE_KEY_PASSWORD. -throwaway signs with a key made for this
// run and forgotten: the release verifies only against the public key it
// prints, which is what a test or a local build wants, never a release
// for others.
package main

import (
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"aead.dev/minisign"
)

// passwordEnv names the environment variable with the key's password.
const passwordEnv = "MOAT_RELEASE_KEY_PASSWORD"

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: release keygen PREFIX | sign -key FILE|-throwaway -version V [-valid 90d] FILE... | verify -pub FILE FILE... | deb … | apt …")
	}
	switch args[0] {
	case "keygen":
		return keygen(args[1:])
	case "sign":
		return signCmd(args[1:])
	case "verify":
		return verifyCmd(args[1:])
	case "deb":
		return debCmd(args[1:])
	case "apt":
		return aptCmd(args[1:])
	}
	return fmt.Errorf("unknown command %q (keygen, sign, verify, deb, apt)", args[0])
}

// keygen writes a new key pair: PREFIX.key (0600; encrypted when
// MOAT_RELEASE_KEY_PASSWORD is set) and PREFIX.pub.
func keygen(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: release keygen PREFIX")
	}
	pub, priv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	var key []byte
	if pw := os.Getenv(passwordEnv); pw != "" {
		key, err = minisign.EncryptKey(pw, priv)
	} else {
		key, err = priv.MarshalText()
	}
	if err != nil {
		return err
	}
	if err := writeNew(args[0]+".key", append(key, '\n'), 0o600); err != nil {
		return err
	}
	pubText, _ := pub.MarshalText()
	if err := writeNew(args[0]+".pub", append(pubText, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Printf("release key %s.key, public key %s.pub: %s\n", args[0], args[0], pub)
	return nil
}

// writeNew writes a file that must not exist yet.
func writeNew(path string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func signCmd(args []string) error {
	fs := flag.NewFlagSet("sign", flag.ContinueOnError)
	keyFile := fs.String("key", "", "the minisign secret key file")
	throwaway := fs.Bool("throwaway", false, "sign with a key made for this run and forgotten (not for a release others install)")
	version := fs.String("version", "dev", "the version, in each signature's trusted comment")
	valid := fs.String("valid", defaultValid, "how long install.sh accepts the release (the manifest's expiry): 90d, 720h")
	date := fs.String("date", "", "the manifest's date, RFC 3339 (default now; tests sign releases that have expired)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	life, err := parseValid(*valid)
	if err != nil {
		return err
	}
	signed := time.Now()
	if *date != "" {
		if signed, err = time.Parse(time.RFC3339, *date); err != nil {
			return fmt.Errorf("-date: %w", err)
		}
	}
	if fs.NArg() == 0 || (*keyFile == "") == !*throwaway {
		return errors.New("usage: release sign -key FILE|-throwaway -version V FILE...")
	}
	priv, err := signingKey(*keyFile, *throwaway)
	if err != nil {
		return err
	}
	for _, f := range fs.Args() {
		if err := signFile(priv, f, manifest(filepath.Base(f), *version, signed, life), *version); err != nil {
			return err
		}
	}
	pub := priv.Public().(minisign.PublicKey)
	pubText, _ := pub.MarshalText()
	if err := os.WriteFile(filepath.Join(filepath.Dir(fs.Arg(0)), "minisign.pub"), append(pubText, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Println(pub)
	return nil
}

// signingKey reads the key file, or makes a throwaway key.
func signingKey(path string, throwaway bool) (minisign.PrivateKey, error) {
	if throwaway {
		_, priv, err := minisign.GenerateKey(rand.Reader)
		return priv, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return minisign.PrivateKey{}, err
	}
	var priv minisign.PrivateKey
	if minisign.IsEncrypted(b) {
		pw := os.Getenv(passwordEnv)
		if pw == "" {
			return priv, fmt.Errorf("%s is encrypted: set %s to its password", path, passwordEnv)
		}
		priv, err = minisign.DecryptKey(pw, b)
	} else {
		err = priv.UnmarshalText(b)
	}
	if err != nil {
		return priv, fmt.Errorf("read %s: %w", path, err)
	}
	return priv, nil
}

// signFile writes path.minisig with the trusted comment (the manifest).
func signFile(priv minisign.PrivateKey, path, trusted, version string) error {
	msg, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	untrusted := fmt.Sprintf("moat %s, signed by release key %X", version, priv.ID())
	sig := minisign.SignWithComments(priv, msg, trusted, untrusted)
	return os.WriteFile(path+".minisig", sig, 0o644)
}

func verifyCmd(args []string) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	pubFile := fs.String("pub", "", "the minisign public key file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *pubFile == "" || fs.NArg() == 0 {
		return errors.New("usage: release verify -pub FILE FILE...")
	}
	pub, err := minisign.PublicKeyFromFile(*pubFile)
	if err != nil {
		return err
	}
	for _, f := range fs.Args() {
		msg, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		sig, err := os.ReadFile(f + ".minisig")
		if err != nil {
			return err
		}
		if !minisign.Verify(pub, msg, sig) {
			return fmt.Errorf("%s: the signature does not verify with %s", f, *pubFile)
		}
	}
	return nil
}
