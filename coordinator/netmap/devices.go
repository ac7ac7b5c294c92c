package netmap

import (
	"context"
	"math"

	"github.com/moatmesh/moat/coordinator/store"
)

// deviceCache keeps the devices the last recompute read, so that the
// next one reads only the rows written since: it lists every device's
// version (a number the database sets on every write of the row, and
// that only grows: see store.DB.DeviceVersions) and re-reads the devices
// whose version it does not hold. A policy save re-reads no device; nor
// does a write of LastSeen alone (not part of versions: a netmap does not
// show it), so the devices' LastSeen may be older than the store's. The
// devices it returns are shared between recomputes: never change one. It
// is safe for one recompute at a time.
type deviceCache struct {
	byID map[string]store.VersionedDevice // nil until the first read
}

// fullReadShare: when more than one in fullReadShare devices changed,
// reading them all costs about as much as picking them out.
const fullReadShare = 4

// read returns every device in the store, in no particular order.
func (c *deviceCache) read(ctx context.Context, st Store) ([]*store.Device, error) {
	vs, err := st.DeviceVersions(ctx)
	if err != nil {
		return nil, err
	}
	stale, from := 0, int64(math.MaxInt64)
	for _, v := range vs {
		if d, ok := c.byID[v.ID]; !ok || d.Version != v.Version {
			stale, from = stale+1, min(from, v.Version)
		}
	}
	if c.byID == nil || stale > len(vs)/fullReadShare {
		from = 0 // every device
	}
	if stale > 0 {
		// A row written since vs was listed has a larger version than
		// listed there: from covers every stale device.
		ds, err := st.DevicesFrom(ctx, from)
		if err != nil {
			return nil, err
		}
		if c.byID == nil {
			c.byID = make(map[string]store.VersionedDevice, len(ds))
		}
		for _, d := range ds {
			c.byID[d.Device.ID] = d
		}
	}
	out := make([]*store.Device, 0, len(vs))
	for _, v := range vs {
		// Held at a version older than listed and not read again: it
		// was deleted in between.
		if d, ok := c.byID[v.ID]; ok && d.Version >= v.Version {
			out = append(out, d.Device)
		}
	}
	if len(c.byID) != len(out) { // some were deleted (or written after vs)
		c.forgetAllBut(out)
	}
	return out, nil
}

// forgetAllBut keeps only the devices ds.
func (c *deviceCache) forgetAllBut(ds []*store.Device) {
	keep := make(map[string]store.VersionedDevice, len(ds))
	for _, d := range ds {
		keep[d.ID] = c.byID[d.ID]
	}
	c.byID = keep
}
