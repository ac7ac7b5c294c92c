package relay

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"

	"tailscale.com/derp"

	"github.com/moatmesh/moat/mesh/key"
)

// pinnedConn is the connection of a mesh client to another relay, which
// must present the key pinned. DERP's client takes the server's key from
// the server's first frame and then sends its own information, the mesh
// key included, sealed to that key: a man in the middle that answered
// with its own key would learn the mesh key. pinnedConn reads the HTTP
// answer and that first frame before the client sees them, and fails the
// connection when the key is not the pinned one, so nothing is sent to
// an impostor.
type pinnedConn struct {
	net.Conn
	want    key.Public
	head    []byte // read and checked, not yet handed to the client
	checked bool
}

// maxPinHead bounds what is read looking for the server's key: an HTTP
// answer's head and one frame.
const maxPinHead = 16 << 10

// errRelayKey is the refusal of a relay whose key is not the pinned one.
var errRelayKey = errors.New("the relay's key is not the one its replica announced; someone may be intercepting between the replicas")

func (c *pinnedConn) Read(p []byte) (int, error) {
	if !c.checked {
		if err := c.check(); err != nil {
			c.Conn.Close()
			return 0, err
		}
	}
	if len(c.head) > 0 {
		n := copy(p, c.head)
		c.head = c.head[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// check reads up to the server's key frame and compares its key with
// the pinned one. An answer other than 101 is passed on for the client
// to refuse.
func (c *pinnedConn) check() error {
	buf := make([]byte, 4096)
	for {
		if done, err := c.verify(); done || err != nil {
			c.checked = done
			return err
		}
		if len(c.head) >= maxPinHead {
			return fmt.Errorf("relay mesh: no key from the relay in %d bytes", maxPinHead)
		}
		n, err := c.Conn.Read(buf)
		c.head = append(c.head, buf[:n]...)
		if err != nil && n == 0 {
			return err
		}
	}
}

// serverKeyFrame is the length of the server's first frame as far as
// its key: type (1), length (4), magic and key.
const serverKeyFrame = 1 + 4 + len(derp.Magic) + key.Len

// verify reports whether c.head holds enough to decide, and the refusal.
func (c *pinnedConn) verify() (bool, error) {
	end := bytes.Index(c.head, []byte("\r\n\r\n"))
	if end < 0 {
		return false, nil
	}
	if !bytes.HasPrefix(c.head, []byte("HTTP/1.1 101 ")) {
		return true, nil // not an upgrade: the client refuses it
	}
	f := c.head[end+4:]
	if len(f) < serverKeyFrame {
		return false, nil
	}
	if derp.FrameType(f[0]) != derp.FrameServerKey || string(f[5:5+len(derp.Magic)]) != derp.Magic {
		return true, errors.New("relay mesh: the relay did not start with its key")
	}
	got, want := f[5+len(derp.Magic):serverKeyFrame], c.want.Raw()
	if subtle.ConstantTimeCompare(got, want[:]) != 1 {
		return true, errRelayKey
	}
	return true, nil
}
