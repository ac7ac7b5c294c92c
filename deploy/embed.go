// Package deploy holds what puts moat on real machines (see README.md).
// Go code reaches two of its files through it: the install script and
// the node's systemd unit, which a coordinator serves when its release
// lacks them (development).
package deploy

import _ "embed"

// InstallScript is install.sh, the static script a release ships and
// signs; the coordinator's URL and pins are its arguments.
//
//go:embed install.sh
var InstallScript string

// NodeUnit is systemd/moat-node.service, which the install script writes.
//
//go:embed systemd/moat-node.service
var NodeUnit string
