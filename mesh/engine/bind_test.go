package engine

import (
	"bytes"
	"net/netip"
	"runtime"
	"slices"
	"testing"

	"golang.zx2c4.com/wireguard/conn"
)

// TestCappedBindCoalescesWithinKernelLimit sends a batch whose datagrams
// StdNetBind alone would coalesce past the kernel's GSO limit (46 × 1,424
// bytes), and requires the receiver to read it whole in one call: past
// the limit the kernel splits the send, and a read gets 2 datagrams.
func TestCappedBindCoalescesWithinKernelLimit(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("UDP GSO and GRO are Linux features")
	}
	a, recv, ep := cappedPair(t)
	bufs, sizes, eps := make([][]byte, conn.IdealBatchSize), make([]int, conn.IdealBatchSize), make([]conn.Endpoint, conn.IdealBatchSize)
	for i := range bufs {
		bufs[i] = make([]byte, 1<<16-1)
	}
	exchange := func(count int) int {
		t.Helper()
		out := make([][]byte, count)
		for i := range out {
			out[i] = make([]byte, 1424, 1<<16-1) // as wireguard-go's buffers
			out[i][0] = byte(i)
		}
		if err := a.Send(out, ep); err != nil {
			t.Fatal(err)
		}
		if cap(out[0]) != 1<<16-1 || len(out[0]) != 1424 {
			t.Fatalf("Send changed the caller's buffer: len %d cap %d", len(out[0]), cap(out[0]))
		}
		got := 0
		for got < count {
			n, err := recv[0](bufs, sizes, eps)
			if err != nil {
				t.Fatal(err)
			}
			for i := range n {
				if sizes[i] != 1424 || bufs[i][0] != byte(got+i) {
					t.Fatalf("datagram %d: %d bytes, first byte %d", got+i, sizes[i], bufs[i][0])
				}
				if eps[i].SrcIP().IsValid() {
					t.Fatalf("datagram %d: source %v kept; want it dropped", got+i, eps[i].SrcIP())
				}
			}
			if got == 0 && n < count {
				return n
			}
			got += n
		}
		return count
	}
	if n := exchange(10); n != 10 {
		t.Skipf("this kernel does not pass UDP GSO through loopback (10 datagrams came %d at a time)", n)
	}
	if n := exchange(46); n != 46 {
		t.Fatalf("first read got %d of 46 datagrams; the kernel split the send", n)
	}
}

// TestCappedBindFullBatchArrivesWhole sends a full batch of datagrams of
// mixed sizes (several GSO runs, each started in a warm buffer) and
// requires every datagram intact and in order at the receiver, the
// caller's buffers unwritten past their packets, and the receiver's
// batch given back holding the caller's own buffers.
func TestCappedBindFullBatchArrivesWhole(t *testing.T) {
	a, recv, ep := cappedPair(t)
	const count = conn.IdealBatchSize
	size := func(i int) int { // runs 0–20, 21–50, 51 alone, 52–97, 98–127
		switch i {
		case 20:
			return 600
		case 50:
			return 90
		case 51:
			return 1000
		}
		return 1424
	}
	out := make([][]byte, count)
	for i := range out {
		out[i] = make([]byte, size(i), 1<<16-1)
		for j := range out[i] {
			out[i][j] = byte(i + j)
		}
	}
	if err := a.Send(out, ep); err != nil {
		t.Fatal(err)
	}
	for i, o := range out {
		if tail := o[len(o):cap(o)]; !bytes.Equal(tail, make([]byte, len(tail))) {
			t.Fatalf("Send wrote past datagram %d in the caller's buffer", i)
		}
	}
	bufs, sizes, eps := make([][]byte, count), make([]int, count), make([]conn.Endpoint, count)
	own := make([][]byte, count)
	for i := range bufs {
		bufs[i] = make([]byte, 1<<16-1)
		own[i] = bufs[i]
	}
	for got := 0; got < count; {
		n, err := recv[0](bufs, sizes, eps)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if !bytes.Equal(bufs[i][:sizes[i]], out[got+i]) {
				t.Fatalf("datagram %d: %d bytes, not as sent (%d)", got+i, sizes[i], len(out[got+i]))
			}
		}
		for i := range bufs {
			if &bufs[i][0] != &own[i][0] || len(bufs[i]) != len(own[i]) {
				t.Fatalf("the receiver left buffer %d not the caller's own", i)
			}
		}
		got += n
	}
}

// TestWarmReceiveCopiesTheTail fills a whole batch, the GRO slots
// included, and requires the wrapped receiver to have read into warm
// buffers there, never the caller's, and every packet to end in the
// caller's own buffers.
func TestWarmReceiveCopiesTheTail(t *testing.T) {
	const batch = conn.IdealBatchSize
	var seen [][]byte // the batch the wrapped receiver got
	fill := func(bufs [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
		seen = append(seen[:0], bufs...)
		for i := range bufs {
			sizes[i] = copy(bufs[i], bytes.Repeat([]byte{byte(i)}, 100+i))
		}
		return len(bufs), nil
	}
	recv := newCappedBind(conn.NewStdNetBind()).warmReceive(fill)
	bufs, sizes, eps := make([][]byte, batch), make([]int, batch), make([]conn.Endpoint, batch)
	own := make([][]byte, batch)
	for i := range bufs {
		bufs[i] = make([]byte, 1<<16-1)
		own[i] = bufs[i]
	}
	for round := range 2 { // the second with warm buffers used before
		n, err := recv(bufs, sizes, eps)
		if err != nil || n != batch {
			t.Fatalf("round %d: %d packets, %v", round, n, err)
		}
		for i := range bufs {
			if got := &seen[i][0] == &own[i][0]; got != (i < batch-groSlots) {
				t.Fatalf("round %d: slot %d read into the caller's buffer: %v", round, i, got)
			}
			if &bufs[i][0] != &own[i][0] {
				t.Fatalf("round %d: the caller's slot %d changed", round, i)
			}
			if want := bytes.Repeat([]byte{byte(i)}, 100+i); sizes[i] != len(want) || !bytes.Equal(bufs[i][:sizes[i]], want) {
				t.Fatalf("round %d: packet %d lost or wrong (%d bytes)", round, i, sizes[i])
			}
			clear(bufs[i][:sizes[i]])
		}
	}
}

func TestGSORun(t *testing.T) {
	mk := func(sizes ...int) [][]byte {
		var bufs [][]byte
		for _, s := range sizes {
			bufs = append(bufs, make([]byte, s))
		}
		return bufs
	}
	many := make([]int, 70)
	for i := range many {
		many[i] = 100
	}
	for _, tc := range []struct {
		name  string
		sizes []int
		want  int
	}{
		{"none", nil, 0},
		{"one", []int{1424}, 1},
		{"equal", []int{1424, 1424, 1424}, 3},
		{"a shorter one ends the run", []int{1424, 600, 1424}, 2},
		{"a longer one starts a new run", []int{600, 1424}, 1},
		{"at most 64 datagrams", many, 64},
		{"within maxGSOPayload", slices.Repeat([]int{1424}, 60), maxGSOPayload / 1424},
	} {
		if got := gsoRun(mk(tc.sizes...)); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

// cappedPair opens two capped binds on loopback and returns the sender,
// the receiver's receive functions and its endpoint as the sender sees it.
func cappedPair(t *testing.T) (*cappedBind, []conn.ReceiveFunc, conn.Endpoint) {
	t.Helper()
	a, b := newCappedBind(conn.NewStdNetBind()), newCappedBind(conn.NewStdNetBind())
	if _, _, err := a.Open(0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	recv, port, err := b.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	ep, err := a.ParseEndpoint(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port).String())
	if err != nil {
		t.Fatal(err)
	}
	return a, recv, ep
}
