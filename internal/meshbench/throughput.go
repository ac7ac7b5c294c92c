package meshbench

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"
)

// chunk is the size of each write of the sender.
const chunk = 256 << 10

// Send writes to c for d, half-closes it, and waits for the receiver's
// count of the bytes it got. It returns the receiver's bytes over the
// time from the first write to the count's arrival, in bits per second.
func Send(c net.Conn, d time.Duration) (float64, error) {
	n, elapsed, err := sendCount(c, d)
	if err != nil {
		return 0, err
	}
	return float64(n) * 8 / elapsed.Seconds(), nil
}

// sendCount is Send returning the receiver's count of bytes and the time it
// took.
func sendCount(c net.Conn, d time.Duration) (uint64, time.Duration, error) {
	buf := make([]byte, chunk)
	start := time.Now()
	deadline := start.Add(d)
	for time.Now().Before(deadline) {
		if _, err := c.Write(buf); err != nil {
			return 0, 0, fmt.Errorf("send: %w", err)
		}
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		if err := cw.CloseWrite(); err != nil {
			return 0, 0, fmt.Errorf("send: close write: %w", err)
		}
	}
	var n uint64
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if err := binary.Read(c, binary.BigEndian, &n); err != nil {
		return 0, 0, fmt.Errorf("send: read the receiver's count: %w", err)
	}
	return n, time.Since(start), nil
}

// Sink accepts connections on ln until it is closed; for each it counts
// the bytes until the sender half-closes, then writes the count back.
func Sink(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			n, _ := io.CopyBuffer(io.Discard, c, make([]byte, chunk))
			binary.Write(c, binary.BigEndian, uint64(n))
		}()
	}
}

// Gbps formats bits per second as Gbit/s.
func Gbps(bps float64) string { return fmt.Sprintf("%.2f Gbit/s", bps/1e9) }
