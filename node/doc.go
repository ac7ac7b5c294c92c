// Package node is the GPU-node role: the guard in front of the local
// inference server, the nftables lockdown, the model registry with its
// integrity checks, and the audit spool. It never imports coordinator.
package node
