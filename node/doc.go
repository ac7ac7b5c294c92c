// Package node is the GPU-node role: a mesh member (mesh/member: key,
// engine, netmap stream) with the guard in front of the local inference
// server, the nftables lockdown, the model registry with its integrity
// checks, and the audit spool on top. The guard, the lockdown and the
// audit spool are packages of their own that do not need a member. It
// never imports coordinator.
package node
