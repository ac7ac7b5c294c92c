package wire

import "time"

// NodeStatus is what a node reports about itself with each advertisement
// (the "status" of POST /api/v1/node). The coordinator keeps the last one
// as it came and shows it to admins; it decides nothing from it. Every
// field is optional: an older node sends less.
type NodeStatus struct {
	// Integrity holds the state of each model with a pinned weights
	// file, by model name.
	Integrity map[string]ModelIntegrity `json:"integrity,omitempty"`
	// Lockdown is the nftables lockdown as the node saw it when it sent
	// the report; nil from nodes that do not report it.
	Lockdown *LockdownStatus `json:"lockdown,omitempty"`
	// AtRest says whether the node's data sits on encrypted storage; nil
	// from nodes that do not report it.
	AtRest *AtRestStatus `json:"atRest,omitempty"`
}

// AtRestStatus is where a node's data sits: its state directory, its
// audit spool and each model's weights file.
type AtRestStatus struct {
	State Storage `json:"state"`
	Spool Storage `json:"spool"`
	// Models holds each served model's weights file, by model name; a
	// model without a configured weights path has Encrypted false and a
	// Reason saying so.
	Models map[string]Storage `json:"models,omitempty"`
	// Checked is when the node looked.
	Checked time.Time `json:"checked,omitzero"`
}

// Storage says whether one path is on encrypted storage.
type Storage struct {
	Path string `json:"path,omitempty"`
	// Encrypted is true when the path's contents are encrypted by fscrypt
	// or its filesystem sits on a dm-crypt device.
	Encrypted bool `json:"encrypted"`
	// How names the encryption found, e.g. "fscrypt v2 (AES-256-XTS)" or
	// "dm-crypt LUKS2 (dm-0)"; empty when none.
	How string `json:"how,omitempty"`
	// Reason says why the path counts as not encrypted; empty when it is.
	Reason string `json:"reason,omitempty"`
}

// ModelIntegrity is the state of one pinned weights file.
type ModelIntegrity struct {
	// OK is true when the file's sha256 matches the pin at the last check.
	OK bool `json:"ok"`
	// Reason says why the model is stopped; empty when OK.
	Reason string `json:"reason,omitempty"`
	// Warning flags a file that others than the service user (and root)
	// can read: every user, a group the service is not in, or another
	// owner. It does not stop the model.
	Warning string `json:"warning,omitempty"`
	// Checked is when the last check finished; zero before the first.
	Checked time.Time `json:"checked,omitzero"`
}

// LockdownStatus says whether a node's nftables lockdown is in place.
type LockdownStatus struct {
	// Active is true when the lockdown table is installed.
	Active bool `json:"active"`
	// Scope is "host" (the whole machine) or "service" (the inference
	// server's processes only); empty when not active.
	Scope string `json:"scope,omitempty"`
	// Error says why the node could not read the lockdown back, when it
	// is configured but could not be inspected.
	Error string `json:"error,omitempty"`
	// Dropped counts what each drop category refused since the lockdown
	// was applied.
	Dropped []LockdownDrops `json:"dropped,omitempty"`
	// Checked is when the node read the lockdown.
	Checked time.Time `json:"checked,omitzero"`
	// Mode is the lockdown the node was started with: "off", "host" or
	// "service". Empty from nodes that do not say.
	Mode string `json:"mode,omitempty"`
	// Problem says why a configured lockdown is not in force right now
	// (its table was deleted and could not be restored, say); the node's
	// guard refuses every model with it meanwhile. Empty when in force.
	Problem string `json:"problem,omitempty"`
	// Events are the node's most recent lockdown events, oldest first, at
	// most MaxLockdownEvents.
	Events []LockdownEvent `json:"events,omitempty"`
}

// MaxLockdownEvents bounds LockdownStatus.Events.
const MaxLockdownEvents = 10

// LockdownEvent is one thing the node's lockdown watch saw and did.
type LockdownEvent struct {
	Time time.Time `json:"time"`
	// Kind is "lost" (the tables were deleted, flushed or changed),
	// "restored", "failed" (re-applying failed), "interfaces" or
	// "resolved".
	Kind   string `json:"kind"`
	Reason string `json:"reason,omitempty"`
	// TookMS is, for "restored", how long the restore took after the
	// loss was seen.
	TookMS int64 `json:"tookMs,omitempty"`
}

// LockdownDrops is what one drop category of the lockdown refused.
type LockdownDrops struct {
	Category string `json:"category"`
	Packets  uint64 `json:"packets"`
	Bytes    uint64 `json:"bytes"`
}
