package mcpstdio

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Config configures a Server. Every zero value has the default given on
// its field.
type Config struct {
	// Command is the server to run. Required.
	Command Command
	// Cgroup is the cgroup v2 directory (absolute, under the cgroup2
	// mount) its processes start in; see MakeCgroup. Default: empty, the
	// node's own cgroup (per-server egress cannot then apply).
	Cgroup string
	// Home is the server's HOME, created if missing. Default: empty, HOME
	// is /nonexistent.
	Home string
	// MaxSessions bounds the sessions (processes) running at once; an
	// initialize beyond it is refused. Default: 16.
	MaxSessions int
	// IdleTimeout ends a session without a request or open stream for
	// that long. Default: 15 minutes.
	IdleTimeout time.Duration
	// StartTimeout bounds the wait for a new process's answer to
	// initialize (npx may download first). Default: 60 seconds.
	StartTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait before starting a process
	// after one exited on its own within MaxBackoff of its start, doubling
	// from Min with each such exit. Defaults: 500ms and 30s.
	MinBackoff, MaxBackoff time.Duration
	// Grace is how long a process has to exit after its stdin closes, and
	// again after SIGTERM, before SIGKILL. Default: 2 seconds.
	Grace time.Duration
	// MaxMessageBytes bounds one message either way. Default: 8 MiB.
	MaxMessageBytes int
	// Logger logs, with the server's name. Default: slog.Default().
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.IdleTimeout, 15*time.Minute)
	def(&c.StartTimeout, 60*time.Second)
	def(&c.MinBackoff, 500*time.Millisecond)
	def(&c.MaxBackoff, 30*time.Second)
	def(&c.Grace, 2*time.Second)
	if c.MaxSessions == 0 {
		c.MaxSessions = 16
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = 8 << 20
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Logger = c.Logger.With("mcp", c.Command.Name)
}

// Server supervises one stdio MCP server: an http.Handler speaking
// Streamable HTTP to the guard, one process per session (see the package
// documentation).
type Server struct {
	cfg      Config
	cgroupFD int // -1 without Config.Cgroup

	mu       sync.Mutex
	sessions map[string]*proc
	fails    int       // processes that exited on their own in a row, soon after starting
	next     time.Time // no start before
	closed   bool
	exits    sync.WaitGroup
}

// New checks cfg and returns the server's supervisor; processes start
// with sessions.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if fi, err := os.Stat(cfg.Command.Path); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return nil, fmt.Errorf("MCP server %s: %s is not an executable file", cfg.Command.Name, cfg.Command.Path)
	}
	s := &Server{cfg: cfg, cgroupFD: -1, sessions: map[string]*proc{}}
	if cfg.Cgroup != "" {
		fd, err := openCgroup(cfg.Cgroup)
		if err != nil {
			return nil, err
		}
		s.cgroupFD = fd
	}
	if cfg.Home != "" {
		if err := makeHome(cfg.Home, cfg.Command); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Name is the server's name.
func (s *Server) Name() string { return s.cfg.Command.Name }

// PIDs returns the processes running, one per session.
func (s *Server) PIDs() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for _, p := range s.sessions {
		out = append(out, p.cmd.Process.Pid)
	}
	return out
}

// start waits out the backoff, starts a process and registers it under
// a new session id.
func (s *Server) start(ctx context.Context) (string, *proc, error) {
	s.mu.Lock()
	wait := time.Until(s.next)
	s.mu.Unlock()
	if wait > 0 {
		s.cfg.Logger.Info("MCP server start delayed after it exited early", "backoff", wait.Round(time.Millisecond))
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return "", nil, ctx.Err()
		}
	}
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "HOME=" + s.home()}
	cmd, err := command(s.cfg.Command, env, s.cgroupFD)
	if err != nil {
		return "", nil, err
	}
	id := newSessionID()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return "", nil, errors.New("the node is stopping")
	case len(s.sessions) >= s.cfg.MaxSessions:
		return "", nil, fmt.Errorf("MCP server %s runs %d sessions, its most; end one or try later", s.cfg.Command.Name, s.cfg.MaxSessions)
	}
	p, err := startProc(cmd, s.cfg.Logger.With("session", id[:8]), s.cfg.MaxMessageBytes, func(p *proc) { s.exited(id, p) })
	if err != nil {
		return "", nil, fmt.Errorf("start MCP server %s: %w", s.cfg.Command.Name, err)
	}
	s.exits.Add(1)
	p.idle = time.AfterFunc(s.cfg.IdleTimeout, func() {
		s.cfg.Logger.Info("MCP session idle; ending it", "session", id[:8])
		s.end(id)
	})
	s.sessions[id] = p
	return id, p, nil
}

func (s *Server) home() string {
	if s.cfg.Home == "" {
		return "/nonexistent"
	}
	return s.cfg.Home
}

// exited forgets the session of a process that exited and, when it
// exited on its own soon after starting, backs off the next start.
func (s *Server) exited(id string, p *proc) {
	defer s.exits.Done()
	s.mu.Lock()
	defer s.mu.Unlock()
	p.idle.Stop()
	delete(s.sessions, id)
	switch {
	case p.stoppedByNode():
	case time.Since(p.started) < s.cfg.MaxBackoff:
		s.fails++
		backoff := min(s.cfg.MinBackoff<<min(s.fails-1, 16), s.cfg.MaxBackoff)
		s.next = time.Now().Add(backoff)
		s.cfg.Logger.Warn("MCP server exited on its own soon after starting; backing off", "session", id[:8], "backoff", backoff)
	default:
		s.fails = 0
		s.cfg.Logger.Warn("MCP server exited on its own; its session ended", "session", id[:8])
	}
}

func (s *Server) session(id string) *proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[id]
}

// end stops a session's process.
func (s *Server) end(id string) {
	if p := s.session(id); p != nil {
		p.stop(s.cfg.Grace)
	}
}

// Close stops every process and waits for them; no session starts
// afterwards.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	procs := make([]*proc, 0, len(s.sessions))
	for _, p := range s.sessions {
		procs = append(procs, p)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Go(func() { p.stop(s.cfg.Grace) })
	}
	wg.Wait()
	s.exits.Wait()
	if s.cgroupFD >= 0 {
		killCgroup(s.cfg.Cgroup)
		closeFD(s.cgroupFD)
		s.cgroupFD = -1
	}
	return nil
}

func newSessionID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}
