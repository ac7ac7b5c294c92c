package store

import "time"

// Liveness says whether a device takes part in the mesh and, when it
// does not, why. It is the one statement of that rule: the netmaps, the
// device credential check and the admin actions all ask Liveness.
type Liveness uint8

const (
	DeviceLive    Liveness = iota // takes part in the mesh
	DeviceRevoked                 // revoked (final)
	DeviceExpired                 // its key expired
	OwnerDisabled                 // a person's device whose owner is disabled or unknown
)

// Expired reports whether d's key has expired at now; a zero Expiry
// (nodes) never does.
func (d *Device) Expired(now time.Time) bool {
	return !d.Expiry.IsZero() && !now.Before(d.Expiry)
}

// Liveness says whether d takes part in the mesh at now. owner is the
// user d.UserID names (nil when unknown); nodes have none.
func (d *Device) Liveness(owner *User, now time.Time) Liveness {
	switch {
	case d.Revoked:
		return DeviceRevoked
	case d.Expired(now):
		return DeviceExpired
	case d.Kind == KindNode:
		return DeviceLive
	case owner == nil || owner.Disabled || owner.ID != d.UserID:
		return OwnerDisabled
	}
	return DeviceLive
}
