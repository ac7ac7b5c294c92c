package engine

import (
	"net/netip"
	"runtime"
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
	a, b := newCappedBind(conn.NewStdNetBind()), newCappedBind(conn.NewStdNetBind())
	if _, _, err := a.Open(0); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	recv, port, err := b.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ep, err := a.ParseEndpoint(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port).String())
	if err != nil {
		t.Fatal(err)
	}
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
