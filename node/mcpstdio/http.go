package mcpstdio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

const hdrSession = "Mcp-Session-Id"

// ServeHTTP speaks the server side of MCP's Streamable HTTP transport to
// the guard: POST one JSON-RPC message (answered with JSON, or 202 for a
// notification or response), GET the session's stream of the server's
// own messages (SSE), DELETE the session.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get(hdrSession)
	if r.Method == http.MethodPost && id == "" {
		s.initialize(w, r)
		return
	}
	p := s.session(id)
	if p == nil {
		http.Error(w, "no such MCP session; initialize again", http.StatusNotFound)
		return
	}
	switch r.Method {
	case http.MethodPost:
		defer p.use(s.cfg.IdleTimeout)()
		s.post(w, r, p)
	case http.MethodGet:
		defer p.use(s.cfg.IdleTimeout)()
		stream(w, r, p)
	case http.MethodDelete:
		p.stop(s.cfg.Grace)
		w.WriteHeader(http.StatusOK)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		http.Error(w, "use POST, GET or DELETE", http.StatusMethodNotAllowed)
	}
}

// head is what the bridge reads of a message.
type head struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
}

func (s *Server) read(w http.ResponseWriter, r *http.Request) ([]byte, head, bool) {
	var h head
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(s.cfg.MaxMessageBytes)))
	if err == nil {
		err = json.Unmarshal(body, &h)
	}
	if err != nil {
		http.Error(w, "want one JSON-RPC message", http.StatusBadRequest)
		return nil, h, false
	}
	return body, h, true
}

// initialize starts a process for a new session and relays its answer
// to initialize, with the session's id.
func (s *Server) initialize(w http.ResponseWriter, r *http.Request) {
	body, h, ok := s.read(w, r)
	if !ok {
		return
	}
	if h.Method != "initialize" || len(h.ID) == 0 {
		http.Error(w, "no session: initialize first", http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.StartTimeout)
	defer cancel()
	id, p, err := s.start(ctx)
	if err != nil {
		s.cfg.Logger.Warn("MCP session not started", "err", err)
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	defer p.use(s.cfg.IdleTimeout)()
	ans, err := p.call(ctx.Done(), h.ID, body)
	if err != nil {
		go p.stop(s.cfg.Grace)
		s.cfg.Logger.Warn("MCP server did not answer initialize", "err", err)
		http.Error(w, fmt.Sprintf("MCP server %s did not answer initialize: %v", s.cfg.Command.Name, err), http.StatusBadGateway)
		return
	}
	w.Header().Set(hdrSession, id)
	writeJSON(w, ans)
}

// post relays one message of a session: a request waits for its answer.
func (s *Server) post(w http.ResponseWriter, r *http.Request, p *proc) {
	body, h, ok := s.read(w, r)
	if !ok {
		return
	}
	if h.Method == "" || len(h.ID) == 0 { // a notification or a response
		if err := p.send(body); err != nil {
			http.Error(w, "the MCP server exited; initialize again", http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		return
	}
	ans, err := p.call(r.Context().Done(), h.ID, body)
	switch {
	case errors.Is(err, errExited):
		http.Error(w, "the MCP server exited; initialize again", http.StatusNotFound)
	case err != nil:
		http.Error(w, err.Error(), http.StatusBadGateway)
	default:
		writeJSON(w, ans)
	}
}

func writeJSON(w http.ResponseWriter, msg []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(msg)
}

// stream relays the server's own messages as server-sent events until
// the client leaves or the process exits.
func stream(w http.ResponseWriter, r *http.Request, p *proc) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	flush := func() {
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
	flush()
	for {
		select {
		case msg := <-p.events:
			fmt.Fprintf(w, "event: message\ndata: %s\n\n", msg)
			flush()
		case <-p.done:
			return
		case <-r.Context().Done():
			return
		}
	}
}
