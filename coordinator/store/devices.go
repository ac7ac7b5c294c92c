package store

import (
	"context"
	"net/netip"
	"time"

	"github.com/moatmesh/moat/mesh/wire"
)

const deviceCols = `id, kind, COALESCE(user_id, ''), public_key, hostname, os, tags, ipv4, ipv6,
	endpoints, models, cred_hash, expiry, last_mfa, revoked, created, last_seen, node_status, software,
	mfa_method`

func scanDevice(r scanner) (*Device, error) {
	d := new(Device)
	return d, r.Scan(deviceDest(d)...)
}

// deviceDest is where the columns of deviceCols go.
func deviceDest(d *Device) []any {
	return []any{&d.ID, &d.Kind, &d.UserID, &d.PublicKey, &d.Hostname, &d.OS,
		jsonCol[string]{&d.Tags}, addrCol{&d.IPv4}, addrCol{&d.IPv6},
		jsonCol[netip.AddrPort]{&d.Endpoints}, jsonCol[wire.ModelAd]{&d.Models}, &d.CredHash,
		timeCol{&d.Expiry}, timeCol{&d.LastMFA}, &d.Revoked, timeCol{&d.Created},
		timeCol{&d.LastSeen}, &d.NodeStatus, &d.Software, &d.MFAMethod}
}

// deviceJSON is the JSON text of a device's slices.
type deviceJSON struct{ tags, endpoints, models string }

func encodeDeviceJSON(d *Device) (j deviceJSON, err error) {
	if j.tags, err = jsonArg(d.Tags); err != nil {
		return j, err
	}
	if j.endpoints, err = jsonArg(d.Endpoints); err != nil {
		return j, err
	}
	j.models, err = jsonArg(d.Models)
	return j, err
}

// createDeviceAttempts bounds the retries of CreateDevice when another
// replica took an address at the same moment.
const createDeviceAttempts = 5

// CreateDevice implements Store. It fills d.ID ("d_…", or "n_…" for
// nodes) and d.Created when they are empty, and d.IPv4 and d.IPv6 when
// they are invalid. An ID, public key, credential hash or given address
// that another device holds is ErrConflict.
func (s *DB) CreateDevice(ctx context.Context, d *Device) error {
	fillNew(&d.ID, idPrefix(d.Kind), &d.Created)
	j, err := encodeDeviceJSON(d)
	if err != nil {
		return s.fail("create device", err)
	}
	for attempt := 1; ; attempt++ {
		v4, v6 := d.IPv4, d.IPv6
		err = s.inTx(ctx, func(c conn) error { return s.insertDevice(ctx, c, d, j, &v4, &v6) })
		if err == nil {
			d.IPv4, d.IPv6 = v4, v6
			return nil
		}
		if !s.d.uniqueViolation(err) || attempt == createDeviceAttempts {
			return s.fail("create device", err)
		}
	}
}

// idPrefix is how the IDs of a kind of device begin.
func idPrefix(k DeviceKind) string {
	if k == KindNode {
		return "n_"
	}
	return "d_"
}

// insertDevice refuses a device that collides with a stored one,
// allocates its missing addresses and inserts it.
func (s *DB) insertDevice(ctx context.Context, c conn, d *Device, j deviceJSON, v4, v6 *netip.Addr) error {
	var n int
	err := c.row(ctx, `SELECT COUNT(*) FROM devices
		WHERE id = ? OR public_key = ? OR cred_hash = ? OR ipv4 = ? OR ipv6 = ?`,
		d.ID, d.PublicKey, blobArg(d.CredHash), addrArg(*v4), addrArg(*v6)).Scan(&n)
	if err != nil {
		return err
	}
	if n > 0 {
		return ErrConflict
	}
	if !v4.IsValid() || !v6.IsValid() {
		if err := s.allocAddrs(ctx, c, v4, v6); err != nil {
			return err
		}
	}
	_, err = c.exec(ctx, `INSERT INTO devices (id, kind, user_id, public_key, hostname, os, tags,
			ipv4, ipv6, endpoints, models, cred_hash, expiry, last_mfa, revoked, created, last_seen,
			node_status, mfa_method)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		d.ID, string(d.Kind), strArg(d.UserID), d.PublicKey, d.Hostname, d.OS, j.tags,
		v4.String(), v6.String(), j.endpoints, j.models, blobArg(d.CredHash),
		s.d.timeArg(d.Expiry), s.d.timeArg(d.LastMFA), d.Revoked, s.d.timeArg(d.Created),
		s.d.timeArg(d.LastSeen), blobArg(d.NodeStatus), d.MFAMethod)
	return err
}

// Device implements Store.
func (s *DB) Device(ctx context.Context, id string) (*Device, error) {
	d, err := getOne(ctx, s.rd(), scanDevice, "SELECT "+deviceCols+" FROM devices WHERE id = ?", id)
	return d, s.fail("device "+id, err)
}

// DeviceByKey implements Store.
func (s *DB) DeviceByKey(ctx context.Context, publicKey string) (*Device, error) {
	d, err := getOne(ctx, s.rd(), scanDevice, "SELECT "+deviceCols+" FROM devices WHERE public_key = ?", publicKey)
	return d, s.fail("device by key", err)
}

// DeviceByCredHash implements Store; an empty hash matches nothing.
func (s *DB) DeviceByCredHash(ctx context.Context, hash []byte) (*Device, error) {
	if len(hash) == 0 {
		return nil, s.fail("device by credential", ErrNotFound)
	}
	d, err := getOne(ctx, s.rd(), scanDevice, "SELECT "+deviceCols+" FROM devices WHERE cred_hash = ?", hash)
	return d, s.fail("device by credential", err)
}

// Devices implements Store; ordered by creation.
func (s *DB) Devices(ctx context.Context) ([]*Device, error) {
	ds, err := getAll(ctx, s.rd(), scanDevice, "SELECT "+deviceCols+" FROM devices ORDER BY created, id")
	return ds, s.fail("devices", err)
}

// DevicesAnyOrder is Devices in no particular order: for a reader of every
// device that orders them itself (the netmap fan-out, at every recompute),
// sparing the database a sort of whole rows.
func (s *DB) DevicesAnyOrder(ctx context.Context) ([]*Device, error) {
	ds, err := getAll(ctx, s.rd(), scanDevice, "SELECT "+deviceCols+" FROM devices")
	return ds, s.fail("devices", err)
}

// DeviceVersion is a device's ID and the version of its row.
type DeviceVersion struct {
	ID      string
	Version int64
}

// DeviceVersions returns every device's ID and version, in no particular
// order: a reader that keeps the devices it read (the netmap fan-out)
// re-reads only those whose version changed (DevicesFrom), and forgets
// those no longer listed. A trigger sets a row's version on every insert
// and update, from a counter that only grows, so a version seen again is
// the same row as read then.
func (s *DB) DeviceVersions(ctx context.Context) ([]DeviceVersion, error) {
	vs, err := getAll(ctx, s.rd(), func(r scanner) (v DeviceVersion, err error) {
		return v, r.Scan(&v.ID, &v.Version)
	}, "SELECT id, version FROM devices")
	return vs, s.fail("device versions", err)
}

// VersionedDevice is a device as read at one version of its row.
type VersionedDevice struct {
	Device  *Device
	Version int64
}

// DevicesFrom returns the devices whose version is at least from (every
// device for 0), in no particular order: the rows written since a
// DeviceVersions that listed versions below from, and possibly more.
func (s *DB) DevicesFrom(ctx context.Context, from int64) ([]VersionedDevice, error) {
	ds, err := getAll(ctx, s.rd(), func(r scanner) (VersionedDevice, error) {
		v := VersionedDevice{Device: new(Device)}
		return v, r.Scan(append(deviceDest(v.Device), &v.Version)...)
	}, "SELECT "+deviceCols+", version FROM devices WHERE version >= ?", from)
	return ds, s.fail("devices", err)
}

// UpdateDevice implements Store: everything but ID, the addresses and
// Created. It never clears Revoked, so a stale copy written back cannot
// undo a revocation; a revoked key comes back only as a new device.
func (s *DB) UpdateDevice(ctx context.Context, d *Device) error {
	j, err := encodeDeviceJSON(d)
	if err != nil {
		return s.fail("update device", err)
	}
	err = s.wr().execOne(ctx, `UPDATE devices SET kind = ?, user_id = ?, public_key = ?, hostname = ?,
			os = ?, tags = ?, endpoints = ?, models = ?, cred_hash = ?, expiry = ?, last_mfa = ?,
			revoked = (revoked OR ?), last_seen = ?, node_status = ?, mfa_method = ?
		WHERE id = ?`,
		string(d.Kind), strArg(d.UserID), d.PublicKey, d.Hostname, d.OS, j.tags, j.endpoints,
		j.models, blobArg(d.CredHash), s.d.timeArg(d.Expiry), s.d.timeArg(d.LastMFA), d.Revoked,
		s.d.timeArg(d.LastSeen), blobArg(d.NodeStatus), d.MFAMethod, d.ID)
	return s.fail("update device "+d.ID, err)
}

// TouchDevice implements Store.
func (s *DB) TouchDevice(ctx context.Context, id string, seen time.Time) error {
	err := s.wr().execOne(ctx, "UPDATE devices SET last_seen = ? WHERE id = ?", s.d.timeArg(seen), id)
	return s.fail("touch device "+id, err)
}

// SetDeviceSoftware implements Store.
func (s *DB) SetDeviceSoftware(ctx context.Context, id, software string) error {
	err := s.wr().execOne(ctx, "UPDATE devices SET software = ? WHERE id = ?", software, id)
	return s.fail("set device software "+id, err)
}

// DeleteDevice implements Store. Its addresses are not handed out again
// until the allocator has gone round the whole prefix.
func (s *DB) DeleteDevice(ctx context.Context, id string) error {
	err := s.wr().execOne(ctx, "DELETE FROM devices WHERE id = ?", id)
	return s.fail("delete device "+id, err)
}
