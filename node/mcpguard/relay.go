package mcpguard

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// forwardHeaders are the request headers that go upstream: the
// transport's own. Everything else (Authorization, cookies, forwarding
// headers) is dropped.
var forwardHeaders = []string{"Content-Type", "Accept", hdrSession, hdrProtocol, "Last-Event-ID"}

// passStream relays a GET (the server's own event stream) or DELETE (end
// of session) of a session the caller owns.
func (x *exchange) passStream() { x.forward(nil, nil) }

// forward sends body to the server and relays its answer, passing each
// JSON-RPC message of it through transform (nil: unchanged).
func (x *exchange) forward(body []byte, transform func([]byte) []byte) {
	u := x.g.servers[x.server]
	req, err := http.NewRequestWithContext(x.r.Context(), x.r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		x.refuseHTTP(http.StatusInternalServerError, "internal", "the request could not be built")
		return
	}
	for _, h := range forwardHeaders {
		if v := x.r.Header.Values(h); len(v) > 0 {
			req.Header[h] = v
		}
	}
	resp, err := x.g.local.transport(u, x.g.cfg.Transport).RoundTrip(req)
	if err != nil {
		x.g.cfg.Logger.Warn("mcp server did not answer", "server", x.server, "err", err)
		x.refuseHTTP(http.StatusBadGateway, "upstream", fmt.Sprintf("MCP server %q on this node did not answer; try again later or tell the node's admin", x.server))
		return
	}
	defer resp.Body.Close()
	x.track(resp)
	for _, h := range []string{"Content-Type", hdrSession, hdrProtocol} {
		if v := resp.Header.Get(h); v != "" {
			x.w.Header().Set(h, v)
		}
	}
	if x.rec != nil {
		x.rec.Status = resp.StatusCode
	}
	ct := resp.Header.Get("Content-Type")
	switch {
	case strings.HasPrefix(ct, "text/event-stream"):
		x.w.WriteHeader(resp.StatusCode)
		x.relaySSE(resp.Body, transform)
	case transform != nil && strings.HasPrefix(ct, "application/json"):
		b, err := io.ReadAll(io.LimitReader(resp.Body, x.g.cfg.MaxResultBytes+1))
		if err != nil || int64(len(b)) > x.g.cfg.MaxResultBytes {
			x.w.Header().Del(hdrSession)
			x.refuseHTTP(http.StatusBadGateway, "upstream", "the MCP server's answer is unreadable or too large")
			return
		}
		out := transform(b)
		x.w.Header().Del("Content-Length")
		x.w.WriteHeader(resp.StatusCode)
		x.w.Write(out)
	default:
		x.w.WriteHeader(resp.StatusCode)
		io.Copy(x.w, io.LimitReader(resp.Body, x.g.cfg.MaxResultBytes))
	}
}

// track binds a session the server opens and forgets one it ends.
func (x *exchange) track(resp *http.Response) {
	switch id := resp.Header.Get(hdrSession); {
	case x.msg != nil && x.msg.Method == "initialize" && id != "" && resp.StatusCode == http.StatusOK:
		x.g.sessions.bind(x.server, id, x.who.key)
	case x.r.Method == http.MethodDelete && resp.StatusCode/100 == 2:
		x.g.sessions.drop(x.server, x.r.Header.Get(hdrSession))
	}
}

// relaySSE copies an event stream event by event, passing each event's
// data (one JSON-RPC message) through transform and flushing after each.
// An event longer than MaxResultBytes ends the stream.
func (x *exchange) relaySSE(body io.Reader, transform func([]byte) []byte) {
	rc := http.NewResponseController(x.w)
	rc.Flush() // the headers: a client may wait for them before it goes on
	rd := bufio.NewReaderSize(body, 64<<10)
	var ev eventBuf
	for {
		line, err := readLine(rd, x.g.cfg.MaxResultBytes)
		if err != nil {
			if err != io.EOF {
				x.g.cfg.Logger.Warn("mcp event stream cut", "server", x.server, "err", err)
			}
			return
		}
		if len(line) > 0 {
			if !ev.add(line, x.g.cfg.MaxResultBytes) {
				x.g.cfg.Logger.Warn("mcp event over the size limit; stream cut", "server", x.server)
				return
			}
			continue
		}
		if _, err := x.w.Write(ev.render(transform)); err != nil {
			return
		}
		rc.Flush()
		ev.reset()
	}
}

// readLine reads one line without its end ("\n" or "\r\n").
func readLine(rd *bufio.Reader, max int64) ([]byte, error) {
	var line []byte
	for {
		chunk, err := rd.ReadSlice('\n')
		line = append(line, chunk...)
		if int64(len(line)) > max {
			return nil, fmt.Errorf("line over %d bytes", max)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil && (err != io.EOF || len(line) == 0) {
			return nil, err
		}
		return bytes.TrimRight(line, "\r\n"), nil
	}
}

// eventBuf collects the lines of one SSE event.
type eventBuf struct {
	fields  []byte // every line but data, as received
	data    []byte // the data lines' values joined by "\n"
	hasData bool
}

func (e *eventBuf) add(line []byte, max int64) bool {
	if v, ok := bytes.CutPrefix(line, []byte("data:")); ok {
		if e.hasData {
			e.data = append(e.data, '\n')
		}
		e.data = append(e.data, bytes.TrimPrefix(v, []byte(" "))...)
		e.hasData = true
	} else {
		e.fields = append(append(e.fields, line...), '\n')
	}
	return int64(len(e.data)+len(e.fields)) <= max
}

// render writes the event back, its data through transform.
func (e *eventBuf) render(transform func([]byte) []byte) []byte {
	out := append([]byte(nil), e.fields...)
	if e.hasData {
		data := e.data
		if transform != nil && len(bytes.TrimSpace(data)) > 0 {
			data = transform(data)
		}
		for _, l := range bytes.Split(data, []byte("\n")) {
			out = append(append(append(out, "data: "...), l...), '\n')
		}
	}
	return append(out, '\n')
}

func (e *eventBuf) reset() { e.fields, e.data, e.hasData = e.fields[:0], e.data[:0], false }
