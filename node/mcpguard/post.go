package mcpguard

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// post handles one POSTed JSON-RPC message.
func (x *exchange) post() {
	body, err := io.ReadAll(http.MaxBytesReader(x.w, x.r.Body, x.g.cfg.MaxBodyBytes))
	if err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			x.refuseHTTP(http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("the request is larger than %d bytes", x.g.cfg.MaxBodyBytes))
			return
		}
		x.refuseHTTP(http.StatusBadRequest, "invalid", "the request body could not be read")
		return
	}
	if x.msg, err = parseMessage(body); err != nil {
		x.refuseHTTP(http.StatusBadRequest, "invalid", err.Error())
		return
	}
	m := x.msg
	switch {
	case m.isResponse(), m.Method == "initialize", m.Method == "ping", m.Method == "logging/setLevel",
		m.ID == nil && strings.HasPrefix(m.Method, "notifications/"):
		x.forward(m.encode(), nil)
	case m.ID == nil:
		x.refuseHTTP(http.StatusBadRequest, "invalid", fmt.Sprintf("%q needs an id: it is a request, not a notification", m.Method))
	case m.Method == "tools/list":
		x.forward(m.encode(), x.filterList)
	case m.Method == "tools/call":
		x.call()
	case strings.HasPrefix(m.Method, "resources/"), strings.HasPrefix(m.Method, "prompts/"), m.Method == "completion/complete":
		x.refuseRPC(codeRefused, "not_governed", fmt.Sprintf("%s is refused: the policy grants MCP tools only, not resources or prompts", m.Method))
	default:
		x.refuseRPC(codeMethodNotFound, "unknown_method", fmt.Sprintf("the guard does not pass MCP method %q", m.Method))
	}
}

// filterList keeps, in a tools/list answer, the tools the caller's grants
// name. An answer it cannot read is replaced by an error: the guard does
// not pass a list it could not filter.
func (x *exchange) filterList(msg []byte) []byte {
	m, err := parseMessage(msg)
	if err != nil || !m.isResponse() {
		return x.unreadable(msg, err)
	}
	if m.Result == nil {
		return msg // an error answer
	}
	var res map[string]json.RawMessage
	var tools []json.RawMessage
	if json.Unmarshal(m.Result, &res) != nil || json.Unmarshal(res["tools"], &tools) != nil {
		return errorResponse(m.ID, codeRefused, "upstream", "the MCP server's tool list could not be read")
	}
	kept := make([]json.RawMessage, 0, len(tools))
	for _, t := range tools {
		var tool struct{ Name string }
		if json.Unmarshal(t, &tool) == nil && x.who.mayList(x.server, tool.Name) {
			kept = append(kept, t)
		}
	}
	res["tools"], _ = json.Marshal(kept)
	m.Result, _ = json.Marshal(res)
	return m.encode()
}

// unreadable passes a server message that is not a response (a
// notification or request on the stream) and replaces one that is not
// JSON-RPC at all.
func (x *exchange) unreadable(msg []byte, err error) []byte {
	if err == nil {
		return msg
	}
	return errorResponse(x.msg.ID, codeRefused, "upstream", "the MCP server's answer is not a JSON-RPC message")
}
