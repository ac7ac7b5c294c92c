package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// debControl returns the control file of a .deb: an ar archive
// ("!<arch>\n", then 60-byte headers, each member padded to an even
// length) whose control.tar.gz holds ./control.
func debControl(deb []byte) (string, error) {
	const magic, header = "!<arch>\n", 60
	if !bytes.HasPrefix(deb, []byte(magic)) {
		return "", errors.New("not a Debian package (no ar header)")
	}
	for off := len(magic); off+header <= len(deb); {
		h := deb[off : off+header]
		name := strings.TrimRight(strings.TrimSpace(string(h[:16])), "/")
		size, err := strconv.Atoi(strings.TrimSpace(string(h[48:58])))
		if err != nil || size < 0 || off+header+size > len(deb) {
			return "", errors.New("malformed ar member header")
		}
		body := deb[off+header : off+header+size]
		if name == "control.tar.gz" {
			return controlFromTar(body)
		}
		off += header + size + size%2
	}
	return "", errors.New("no control.tar.gz in the package")
}

func controlFromTar(tgz []byte) (string, error) {
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		return "", err
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return "", errors.New("no control file in control.tar.gz")
		}
		if err != nil {
			return "", err
		}
		if strings.TrimPrefix(h.Name, "./") == "control" {
			b, err := io.ReadAll(io.LimitReader(tr, 1<<20))
			if err != nil {
				return "", fmt.Errorf("control: %w", err)
			}
			return string(b), nil
		}
	}
}
