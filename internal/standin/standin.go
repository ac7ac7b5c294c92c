// Package standin is a stand-in inference server for the demo and the
// tests: it speaks just enough of the OpenAI and Ollama APIs to answer
// chat, completion and embedding requests with a deterministic text,
// streamed word by word. It is clearly not a model, and says so in every
// answer.
package standin

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// Answer is what the stand-in says to every prompt.
const Answer = "This is moat's built-in stand-in model, not a real one. Your request travelled over WireGuard, was checked by the guard on the node, and left an audit record."

// Server is a running stand-in on a loopback port.
type Server struct {
	URL string // e.g. http://127.0.0.1:PORT
	srv *http.Server
}

// Start serves the stand-in on 127.0.0.1 (port 0 picks one). Delay is
// the pause between streamed words (0: none).
func Start(port int, delay time.Duration) (*Server, error) {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return nil, err
	}
	h := &handler{delay: delay}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", h.openai(true))
	mux.HandleFunc("POST /v1/completions", h.openai(false))
	mux.HandleFunc("POST /v1/embeddings", h.embeddings)
	mux.HandleFunc("GET /v1/models", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"object": "list", "data": []any{map[string]any{"id": "standin", "object": "model"}}})
	})
	mux.HandleFunc("POST /api/chat", h.ollama(true))
	mux.HandleFunc("POST /api/generate", h.ollama(false))
	s := &Server{URL: "http://" + ln.Addr().String(), srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}}
	go s.srv.Serve(ln)
	return s, nil
}

// Close stops the server.
func (s *Server) Close() error { return s.srv.Close() }

type handler struct{ delay time.Duration }

type request struct {
	Model         string `json:"model"`
	Stream        *bool  `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

func readRequest(r *http.Request) (request, int) {
	var req request
	b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	_ = json.Unmarshal(b, &req)
	return req, len(b)/4 + 1
}

func words() []string { return strings.SplitAfter(Answer, " ") }

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func (h *handler) openai(chat bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		req, promptTokens := readRequest(r)
		usage := map[string]int{"prompt_tokens": promptTokens, "completion_tokens": len(words()), "total_tokens": promptTokens + len(words())}
		piece := func(text string) map[string]any {
			if chat {
				return map[string]any{"index": 0, "delta": map[string]string{"content": text}}
			}
			return map[string]any{"index": 0, "text": text}
		}
		if req.Stream == nil || !*req.Stream {
			choice := map[string]any{"index": 0, "finish_reason": "stop", "text": Answer}
			if chat {
				choice = map[string]any{"index": 0, "finish_reason": "stop", "message": map[string]string{"role": "assistant", "content": Answer}}
			}
			writeJSON(w, map[string]any{"id": "standin-1", "object": "chat.completion", "model": req.Model, "choices": []any{choice}, "usage": usage})
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for _, word := range words() {
			ev, _ := json.Marshal(map[string]any{"id": "standin-1", "object": "chat.completion.chunk", "model": req.Model, "choices": []any{piece(word)}})
			fmt.Fprintf(w, "data: %s\n\n", ev)
			w.(http.Flusher).Flush()
			h.pause(r)
		}
		if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
			ev, _ := json.Marshal(map[string]any{"id": "standin-1", "object": "chat.completion.chunk", "model": req.Model, "choices": []any{}, "usage": usage})
			fmt.Fprintf(w, "data: %s\n\n", ev)
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	}
}

func (h *handler) ollama(chat bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		req, promptTokens := readRequest(r)
		piece := func(text string, done bool) map[string]any {
			m := map[string]any{"model": req.Model, "done": done}
			if chat {
				m["message"] = map[string]string{"role": "assistant", "content": text}
			} else {
				m["response"] = text
			}
			if done {
				m["prompt_eval_count"], m["eval_count"] = promptTokens, len(words())
			}
			return m
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		if req.Stream != nil && !*req.Stream {
			writeJSON(w, piece(Answer, true))
			return
		}
		for _, word := range words() {
			b, _ := json.Marshal(piece(word, false))
			w.Write(append(b, '\n'))
			w.(http.Flusher).Flush()
			h.pause(r)
		}
		b, _ := json.Marshal(piece("", true))
		w.Write(append(b, '\n'))
	}
}

func (h *handler) embeddings(w http.ResponseWriter, r *http.Request) {
	req, n := readRequest(r)
	writeJSON(w, map[string]any{"object": "list", "model": req.Model,
		"data":  []any{map[string]any{"object": "embedding", "index": 0, "embedding": []float64{0.1, 0.2, 0.3}}},
		"usage": map[string]int{"prompt_tokens": n, "total_tokens": n}})
}

func (h *handler) pause(r *http.Request) {
	if h.delay > 0 {
		select {
		case <-time.After(h.delay):
		case <-r.Context().Done():
		}
	}
}
