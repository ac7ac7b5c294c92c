package wire

import "time"

// LeaseRequest asks the coordinator for tokens of one person's daily
// quota under one grant (tokensPerDay), POST /api/v1/node/lease with the
// node's credential. The coordinator holds the organisation's counter:
// it charges a lease when it grants it and takes back what the node
// returns, so every node serving the grant draws on one quota.
type LeaseRequest struct {
	// Who is the guard's limit key: "user:ID" for a person,
	// "device:ID" for a tagged device.
	Who string `json:"who"`
	// Grant is the grant's ID, "grants[N]".
	Grant string `json:"grant"`
	// Day is the UTC day number (Unix seconds / 86400) the tokens count
	// for.
	Day int64 `json:"day"`
	// Want is the tokens asked for; 0 only returns.
	Want int64 `json:"want"`
	// Return is the unused part of the node's earlier leases of the same
	// day, given back.
	Return int64 `json:"return,omitempty"`
	// Extra is what the node admitted on its own allowance while it
	// could not reach the coordinator, charged now whatever is left.
	Extra int64 `json:"extra,omitempty"`
}

// LeaseResponse is the coordinator's answer to a LeaseRequest.
type LeaseResponse struct {
	// Granted is the tokens leased: Want, or less (0) when the quota has
	// fewer left.
	Granted int64 `json:"granted"`
	// Used is the organisation's count for the day after this lease.
	Used int64 `json:"used"`
	// Limit is the grant's tokensPerDay in the coordinator's policy; 0:
	// the grant sets none (the node needs no lease).
	Limit int64 `json:"limit"`
	// Expires is when the node must stop admitting on the lease and
	// return what it did not use.
	Expires time.Time `json:"expires"`
}
