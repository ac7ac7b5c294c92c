package netmap

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/internal/pgtest"
	"github.com/moatmesh/moat/mesh/wire"
)

// TestDeviceCacheMatchesFullRead writes devices at random through every
// store method that writes a device row and checks, after each round,
// that what the cache reads (only the rows whose version changed) is
// what a full read returns, but for LastSeen (its writes are left out of
// versions): a write path that did not change the row's version would
// leave the cache with the old row. On SQLite, and on PostgreSQL when
// MOAT_TEST_POSTGRES names a server.
func TestDeviceCacheMatchesFullRead(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "moat.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		checkDeviceCache(t, st)
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := pgtest.FreshSchema(t, pgtest.URL(t, "the device cache test"))
		st, err := store.OpenPostgres(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		checkDeviceCache(t, st)
	})
}

func checkDeviceCache(t *testing.T, st *store.DB) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	u, err := st.UpsertUserByOIDC(ctx, &store.User{Issuer: "test", Subject: "u", Email: "u@example.com", Role: "member"})
	if err != nil {
		t.Fatal(err)
	}
	w := &deviceWriter{t: t, st: st, rng: rng, user: u.ID}
	var c deviceCache
	for round := range 60 {
		for range rng.IntN(6) {
			w.write(ctx)
		}
		got, err := c.read(ctx, st)
		if err != nil {
			t.Fatal(err)
		}
		want, err := st.DevicesAnyOrder(ctx)
		if err != nil {
			t.Fatal(err)
		}
		byID := func(a, b *store.Device) int { return strings.Compare(a.ID, b.ID) }
		got, want = withoutLastSeen(got), withoutLastSeen(want)
		slices.SortFunc(got, byID)
		slices.SortFunc(want, byID)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round %d, after %v: the cache read\n%s\na full read\n%s", round, w.done, showDevices(got), showDevices(want))
		}
		w.done = nil
	}
	if w.ops < 100 {
		t.Fatalf("only %d writes", w.ops)
	}
}

// deviceWriter makes random writes to devices.
type deviceWriter struct {
	t    *testing.T
	st   *store.DB
	rng  *rand.Rand
	user string
	ids  []string
	n    int
	ops  int
	done []string // the writes since the last check
}

func (w *deviceWriter) write(ctx context.Context) {
	w.ops++
	if len(w.ids) == 0 || w.rng.IntN(5) == 0 {
		w.create(ctx)
		return
	}
	id := w.ids[w.rng.IntN(len(w.ids))]
	d, err := w.st.Device(ctx, id)
	if err != nil {
		w.t.Fatal(err)
	}
	now := time.Now()
	var op string
	switch w.rng.IntN(8) {
	case 0:
		op, err = "delete", w.st.DeleteDevice(ctx, id)
		w.ids = slices.DeleteFunc(w.ids, func(x string) bool { return x == id })
	case 1:
		op, err = "touch", w.st.TouchDevice(ctx, id, now)
	case 2:
		op, err = "software", w.st.SetDeviceSoftware(ctx, id, fmt.Sprint("moat/v", w.ops))
	case 3:
		op, err = "rotate", w.st.RotateNodeCredential(ctx, id, &store.NodeCredential{Hash: []byte(fmt.Sprint("cred", w.ops)), DeviceID: id, Issued: now}, now, now.Add(time.Minute))
	case 4:
		d.Revoked = true
		op, err = "revoke", w.st.UpdateDevice(ctx, d)
	case 5:
		d.Endpoints = []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), uint16(w.ops))}
		op, err = "endpoints", w.st.UpdateDevice(ctx, d)
	case 6:
		d.Models = append(d.Models, wire.ModelAd{Name: fmt.Sprint("m", w.ops)})
		op, err = "models", w.st.UpdateDevice(ctx, d)
	default:
		d.LastMFA, d.Expiry = now, now.Add(time.Hour)
		op, err = "mfa", w.st.UpdateDevice(ctx, d)
	}
	if err != nil {
		w.t.Fatalf("%s %s: %v", op, id, err)
	}
	w.done = append(w.done, op+" "+id)
}

func (w *deviceWriter) create(ctx context.Context) {
	w.n++
	d := &store.Device{Kind: store.KindNode, PublicKey: fmt.Sprint("key", w.n), Hostname: "h", CredHash: []byte(fmt.Sprint("c", w.n))}
	if w.rng.IntN(2) == 0 {
		d.Kind, d.UserID = store.KindUser, w.user
	}
	if err := w.st.CreateDevice(ctx, d); err != nil {
		w.t.Fatal(err)
	}
	w.ids = append(w.ids, d.ID)
	w.done = append(w.done, "create "+d.ID)
}

func showDevices(ds []*store.Device) string {
	var b strings.Builder
	for _, d := range ds {
		fmt.Fprintf(&b, "  %+v\n", *d)
	}
	return b.String()
}

// withoutLastSeen returns copies of ds with LastSeen zero.
func withoutLastSeen(ds []*store.Device) []*store.Device {
	out := make([]*store.Device, len(ds))
	for i, d := range ds {
		c := *d
		c.LastSeen = time.Time{}
		out[i] = &c
	}
	return out
}
