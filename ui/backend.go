package ui

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// Backend is what the UI needs from the coordinator. The coordinator
// implements it; tests may fake it. Every method is safe for concurrent
// use and honours ctx. Errors wrapping ErrNotFound are shown as 404, and a
// *UserError's message is shown to the person as it is; any other error
// is logged by the backend and shown as a generic failure.
type Backend interface {
	// Viewer returns who signed in to the UI with r, or nil when nobody
	// did (or their session expired, or they were disabled since): the UI
	// then sends the browser to /ui/login.
	Viewer(r *http.Request) *Viewer
	// Overview counts what the overview page shows.
	Overview(ctx context.Context) (*Overview, error)
	// Devices lists people's devices (not nodes), newest first or in any
	// stable order.
	Devices(ctx context.Context) ([]Device, error)
	// RevokeDevice revokes device id for good, on behalf of actor, and
	// records it in the admin trail.
	RevokeDevice(ctx context.Context, actor *Viewer, id string) error
	// Nodes lists the GPU nodes and the enrollment keys.
	Nodes(ctx context.Context) ([]Node, []EnrollKey, error)
	// CreateEnrollKey makes an enrollment key on behalf of actor, records
	// it in the admin trail and returns its secret, which cannot be shown
	// again.
	CreateEnrollKey(ctx context.Context, actor *Viewer, tags []string, reusable bool, ttl time.Duration) (*NewKey, error)

	PeopleBackend // people.go: people, models, device expiry, node status
	FactorBackend // factors.go: a person's second factors and their reset
	PolicyBackend // policy.go: the policy editor and its history
	AuditBackend  // audit.go: audit records and the admin trail
	UsageBackend  // usage.go: use and spend over time, a person's own
	MCPBackend    // mcp.go: MCP servers, their tools and who may call them
}

// ErrNotFound is what a Backend's error wraps when the thing asked for
// does not exist; ErrConflict when a change lost a race with another.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
)

// UserError is a refusal whose message is meant for the person, such as
// a bad tag in a form.
type UserError struct{ Msg string }

func (e *UserError) Error() string { return e.Msg }

// Roles a Viewer may have.
const (
	RoleAdmin   = "admin"   // everything
	RoleAuditor = "auditor" // read-only: overview, policy, audit
	RoleMember  = "member"  // their own devices and models
)

// Viewer is the person signed in to the UI.
type Viewer struct {
	ID    string // the user id, recorded as the actor of admin actions
	Email string
	Role  string // RoleAdmin, RoleAuditor or RoleMember; anything else is a member
	// CSRF is the token every form of this session must carry; the UI
	// refuses a POST whose "csrf" field does not match it.
	CSRF string
	// Build is the coordinator's version, shown at the foot of every page.
	Build string
}

// Overview is what the overview page shows.
type Overview struct {
	DevicesOnline, Devices int
	Nodes, Models          int
	// Requests and Refusals count audited model requests (refusals are
	// those not allowed) over the last hour and day.
	RequestsHour, RequestsDay int
	RefusalsHour, RefusalsDay int
	// Hourly holds the requests of each of the last 24 hours, oldest
	// first; the last entry is the current hour.
	Hourly []int
	// HourlyRefused holds the refusals among them, hour by hour.
	HourlyRefused []int
	// Capped is true when the day had more records than were counted.
	Capped bool
	// IdPProblem, when set, says since when and why the identity
	// provider does not answer: new sign-ins fail until it is back.
	IdPProblem string
}

// Device is a person's device.
type Device struct {
	ID, Hostname, OS string
	OwnerID, Owner   string // the owner's user id and email
	Addresses        []string
	Expiry, LastSeen time.Time
	Revoked, Online  bool
	Kind             string // "user" or "wgconfig"
	Software         string // what the device last said it runs, "moat/v1.2.3"; "" unknown
	Paths            []Path // how it last said it reaches its peers; none: no report
}

// Node is a GPU node.
type Node struct {
	ID, Hostname string
	Tags         []string
	Models       []string // models it serves
	MCP          []string // MCP servers it serves
	Addresses    []string
	LastSeen     time.Time
	Online       bool
	Revoked      bool
	Software     string // what the node last said it runs, "moat-node/v1.2.3"; "" unknown
	Paths        []Path // how it last said it reaches its peers; none: no report
	// KeyIssued and KeyExpiry bound the node's current credential (it
	// gets the next one itself before KeyExpiry); KeyIssued is zero for
	// a node joined before credentials expired. KeyAge is how old it is.
	KeyIssued, KeyExpiry time.Time
	KeyAge               time.Duration
	// Expiry is when the node leaves the mesh; zero: never.
	Expiry time.Time
}

// EnrollKey is an enrollment key as listed (never its secret).
type EnrollKey struct {
	ID        string
	Tags      []string
	Reusable  bool
	Expiry    time.Time
	Uses      int
	Revoked   bool
	CreatedBy string
}

// NewKey is a key just made: its secret and the command that uses it.
type NewKey struct {
	ID      string
	Secret  string
	Install string // the one-line install command for a GPU host
	Expiry  time.Time
}
