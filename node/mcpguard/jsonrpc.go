package mcpguard

import (
	"bytes"
	"encoding/json"
	"errors"
)

// message is one JSON-RPC 2.0 message: a request (Method and ID), a
// notification (Method, no ID) or a response (ID and Result or Error).
type message struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  string          `json:"method,omitempty"`
	Params  json.RawMessage `json:"params,omitempty"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   json.RawMessage `json:"error,omitempty"`
}

// JSON-RPC error codes the guard answers with.
const (
	codeParse          = -32700
	codeInvalidRequest = -32600
	codeMethodNotFound = -32601
	codeInvalidParams  = -32602
	// codeRefused is the guard's refusal of a call the policy does not
	// allow, in the range JSON-RPC leaves to implementations.
	codeRefused = -32001
)

var errBatch = errors.New("JSON-RPC batches are not supported (MCP has none since 2025-06-18); send one message per request")

// parseMessage decodes one JSON-RPC message. Arrays (batches) and
// anything that is not a JSON-RPC 2.0 object are refused.
func parseMessage(b []byte) (*message, error) {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '[' {
		return nil, errBatch
	}
	if len(b) == 0 || b[0] != '{' {
		return nil, errors.New("the body is not a JSON-RPC message (a JSON object)")
	}
	var m message
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, errors.New("the body is not valid JSON: " + err.Error())
	}
	if m.JSONRPC != "2.0" {
		return nil, errors.New(`"jsonrpc" must be "2.0"`)
	}
	if isNull(m.ID) {
		m.ID = nil
	}
	return &m, nil
}

func isNull(b json.RawMessage) bool { return len(b) == 0 || string(b) == "null" }

// isRequest reports whether m expects a response.
func (m *message) isRequest() bool { return m.Method != "" && m.ID != nil }

// isResponse reports whether m answers a request.
func (m *message) isResponse() bool { return m.Method == "" && (m.Result != nil || m.Error != nil) }

// encode re-encodes m: what goes upstream is exactly what was checked.
func (m *message) encode() []byte {
	b, _ := json.Marshal(m) // raw parts were valid JSON when parsed
	return b
}

// rpcError is the error object of a JSON-RPC response.
type rpcError struct {
	Code    int        `json:"code"`
	Message string     `json:"message"`
	Data    *errorData `json:"data,omitempty"`
}

// errorData says why the guard refused, for programs.
type errorData struct {
	Reason string `json:"reason"`
}

// errorResponse renders a JSON-RPC error response to id.
func errorResponse(id json.RawMessage, code int, reason, msg string) []byte {
	if id == nil {
		id = json.RawMessage("null")
	}
	e := rpcError{Code: code, Message: msg}
	if reason != "" {
		e.Data = &errorData{Reason: reason}
	}
	b, _ := json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   rpcError        `json:"error"`
	}{"2.0", id, e})
	return b
}

// callParams are the params of tools/call.
type callParams struct {
	Name      string
	Arguments json.RawMessage
	rest      map[string]json.RawMessage // every field, for re-encoding
}

func parseCallParams(b json.RawMessage) (*callParams, error) {
	var p callParams
	if err := json.Unmarshal(b, &p.rest); err != nil || p.rest == nil {
		return nil, errors.New(`tools/call needs "params": {"name": ..., "arguments": {...}}`)
	}
	if err := json.Unmarshal(p.rest["name"], &p.Name); err != nil || p.Name == "" {
		return nil, errors.New(`tools/call needs "params.name", the tool's name as a string`)
	}
	p.Arguments = p.rest["arguments"]
	return &p, nil
}

// encode re-encodes the params with args as the arguments.
func (p *callParams) encode(args json.RawMessage) json.RawMessage {
	if args != nil {
		p.rest["arguments"] = args
	}
	b, _ := json.Marshal(p.rest)
	return b
}
