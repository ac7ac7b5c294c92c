package netmap

import (
	"encoding/json"
	"strconv"

	"github.com/moatmesh/moat/mesh/wire"
)

// Peer entries are encoded in two parts. The head is what the peer's
// device says of itself (key, addresses, endpoints, identity): the same
// for every viewer, encoded by json.Marshal once per device encoding.
// The tail is what one viewer is told beyond it (models, APIs, access,
// keep-alive, MCP), appended here by hand. Together they are exactly
// json.Marshal's bytes for the wire.Peer (FuzzPeerJSON holds them to it).

// peerHead returns the JSON of wp's device part, without its closing
// brace: every field after Identity is omitted when empty.
func peerHead(wp *wire.Peer) ([]byte, error) {
	b, err := json.Marshal(wire.Peer{Key: wp.Key, Addresses: wp.Addresses, Endpoints: wp.Endpoints, Identity: wp.Identity})
	if err != nil {
		return nil, err
	}
	return b[:len(b)-1], nil
}

// appendPeerTail appends the fields of wp after Identity, as json.Marshal
// writes them, and the closing brace.
func appendPeerTail(b []byte, wp *wire.Peer) ([]byte, error) {
	if len(wp.Models) > 0 {
		b = appendJSONStrings(append(b, `,"models":`...), wp.Models)
	}
	var err error
	if len(wp.APIs) > 0 {
		if b, err = appendMarshal(append(b, `,"apis":`...), wp.APIs); err != nil {
			return nil, err
		}
	}
	if len(wp.Access) > 0 {
		b = append(b, `,"access":[`...)
		for i, a := range wp.Access {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(append(b, `{"model":`...), a.Model)
			b = append(strconv.AppendInt(append(b, `,"grant":`...), int64(a.Grant), 10), '}')
		}
		b = append(b, ']')
	}
	if wp.KeepAlive != 0 {
		b = strconv.AppendInt(append(b, `,"keepAlive":`...), int64(wp.KeepAlive), 10)
	}
	if len(wp.MCP) > 0 {
		b = appendJSONStrings(append(b, `,"mcp":`...), wp.MCP)
	}
	if len(wp.MCPAccess) > 0 {
		if b, err = appendMarshal(append(b, `,"mcpAccess":`...), wp.MCPAccess); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// appendMarshal appends v's JSON, by json.Marshal.
func appendMarshal(b []byte, v any) ([]byte, error) {
	j, err := json.Marshal(v)
	return append(b, j...), err
}

// appendJSONStrings appends ss as a JSON array.
func appendJSONStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	return append(b, ']')
}

// appendJSONString appends s as json.Marshal writes it: quoted as it is
// when it holds only printable ASCII that JSON (with json.Marshal's HTML
// escaping) leaves alone, else by json.Marshal itself.
func appendJSONString(b []byte, s string) []byte {
	for i := range len(s) {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	return append(append(append(b, '"'), s...), '"')
}
