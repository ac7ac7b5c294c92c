package engine

import (
	"net"
	"time"
)

// A mesh peer that vanishes (its host crashed, was cut off, or restarted
// and forgot the connection) sends no FIN or RST over WireGuard: without
// keepalive a TCP connection to it waits forever. Every TCP connection
// the engine dials therefore probes an idle peer, and gives up on data
// that goes unacknowledged for meshUserTimeout; a dead peer is noticed
// within about Idle + Count×Interval (14 s), while a live one — a model
// thinking for minutes before its first token — answers the probes and
// keeps its connection.

// meshKeepalive is the TCP keepalive of connections dialled over the mesh.
var meshKeepalive = net.KeepAliveConfig{Enable: true, Idle: 5 * time.Second, Interval: 3 * time.Second, Count: 3}

// meshUserTimeout is how long data sent over the mesh may stay
// unacknowledged before the connection fails (TCP_USER_TIMEOUT).
const meshUserTimeout = 20 * time.Second
