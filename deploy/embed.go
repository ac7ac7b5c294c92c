// Package deploy holds what puts moat on real machines (see README.md).
// Go code reaches two of its files through it: the install script
// template and the node's systemd unit, which the coordinator serves at
// /install.sh.
package deploy

import _ "embed"

// InstallScript is install.sh.tmpl, a text/template the coordinator
// renders with its URL and certificate pins.
//
//go:embed install.sh.tmpl
var InstallScript string

// NodeUnit is systemd/moat-node.service, which the install script writes.
//
//go:embed systemd/moat-node.service
var NodeUnit string
