package coordinator

import (
	"encoding/json"
	"net/netip"
	"time"

	"github.com/moatmesh/moat/coordinator/netmap"
	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/mesh/wire"
)

// The admin API's answers (and the few other JSON answers that are not
// wire types). Their JSON is the API: rename nothing.

// userList answers GET /api/v1/admin/users.
type userList struct {
	Users []userInfo `json:"users"`
}

type userInfo struct {
	ID          string    `json:"id"`
	Email       string    `json:"email"`
	Name        string    `json:"name"`
	Groups      []string  `json:"groups"`
	Role        string    `json:"role"`
	Disabled    bool      `json:"disabled"`
	LastLogin   time.Time `json:"lastLogin"`
	MFAEnrolled bool      `json:"mfaEnrolled"`
}

func newUserInfo(u *store.User) userInfo {
	return userInfo{ID: u.ID, Email: u.Email, Name: u.Name, Groups: u.Groups, Role: u.Role,
		Disabled: u.Disabled, LastLogin: u.LastLogin, MFAEnrolled: u.TOTPSecret != nil}
}

// deviceList answers GET /api/v1/admin/devices.
type deviceList struct {
	Devices []deviceInfo `json:"devices"`
}

type deviceInfo struct {
	ID        string           `json:"id"`
	Kind      store.DeviceKind `json:"kind"`
	User      string           `json:"user"`
	Hostname  string           `json:"hostname"`
	OS        string           `json:"os"`
	Tags      []string         `json:"tags"`
	Addresses []netip.Addr     `json:"addresses"`
	Expiry    time.Time        `json:"expiry"`
	LastSeen  time.Time        `json:"lastSeen"`
	Revoked   bool             `json:"revoked"`
	Models    []wire.ModelAd   `json:"models"`
	Endpoints []netip.AddrPort `json:"endpoints"`
	PublicKey string           `json:"publicKey"`
	Software  string           `json:"software,omitempty"` // "moat-node/v1.2.3", as the member last said
	// A node's current credential: when it was issued and when it
	// expires (the node renews it before); absent for people's devices
	// and nodes joined before credentials expired.
	CredentialIssued time.Time `json:"credentialIssued,omitzero"`
	CredentialExpiry time.Time `json:"credentialExpiry,omitzero"`
}

func newDeviceInfo(d *store.Device) deviceInfo {
	return deviceInfo{ID: d.ID, Kind: d.Kind, User: d.UserID, Hostname: d.Hostname, OS: d.OS, Tags: d.Tags,
		Addresses: netmap.Addresses(d), Expiry: d.Expiry, LastSeen: d.LastSeen, Revoked: d.Revoked,
		Models: d.Models, Endpoints: d.Endpoints, PublicKey: d.PublicKey, Software: d.Software}
}

// enrollKeyList answers GET /api/v1/admin/enroll-keys.
type enrollKeyList struct {
	Keys []enrollKeyInfo `json:"keys"`
}

type enrollKeyInfo struct {
	ID        string    `json:"id"`
	Tags      []string  `json:"tags"`
	Reusable  bool      `json:"reusable"`
	Expiry    time.Time `json:"expiry"`
	Uses      int       `json:"uses"`
	Revoked   bool      `json:"revoked"`
	CreatedBy string    `json:"createdBy"`
	Created   time.Time `json:"created"`
}

func newEnrollKeyInfo(k *store.EnrollKey) enrollKeyInfo {
	return enrollKeyInfo{ID: k.ID, Tags: k.Tags, Reusable: k.Reusable, Expiry: k.Expiry,
		Uses: k.Uses, Revoked: k.Revoked, CreatedBy: k.CreatedBy, Created: k.Created}
}

// newEnrollKeyAnswer answers POST /api/v1/admin/enroll-keys: the secret,
// shown this once, and the install command that uses it.
type newEnrollKeyAnswer struct {
	ID       string    `json:"id"`
	Key      string    `json:"key"`
	Tags     []string  `json:"tags"`
	Reusable bool      `json:"reusable"`
	Expiry   time.Time `json:"expiry"`
	Install  string    `json:"install"`
}

// actionList answers GET /api/v1/admin/actions.
type actionList struct {
	Actions []*store.AdminAction `json:"actions"`
}

// builtinPolicyAnswer answers GET /api/v1/admin/policy before any
// policy was saved (a saved one is answered as its store.PolicyVersion).
type builtinPolicyAnswer struct {
	ID      int64  `json:"id"`
	Text    string `json:"text"`
	Builtin bool   `json:"builtin"`
}

// policyCheckAnswer answers a policy validation or save: ok, or the
// problems; a save also names the new version.
type policyCheckAnswer struct {
	OK     bool            `json:"ok"`
	Errors []policyProblem `json:"errors,omitempty"`
	ID     int64           `json:"id,omitempty"`
}

// policyProblem is one error in a policy, positioned for an editor. Its
// fields are ui.PolicyProblem's, so that one converts to the other.
type policyProblem struct {
	Line int    `json:"line,omitempty"`
	Col  int    `json:"col,omitempty"`
	Msg  string `json:"message"`
}

// policyHistoryAnswer answers GET /api/v1/admin/policy/history.
type policyHistoryAnswer struct {
	Versions []*store.PolicyVersion `json:"versions"`
}

// auditList answers GET /api/v1/admin/audit: the records as the nodes
// sent them, newest first.
type auditList struct {
	Records []json.RawMessage `json:"records"`
}

// auditReceipt answers a node's POST /api/v1/audit.
type auditReceipt struct {
	Received int `json:"received"`
	Stored   int `json:"stored"`
}

// loginPending answers a login poll that is still waiting.
type loginPending struct {
	Status string `json:"status"` // "pending"
}
