package mcpstdio

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// errExited answers the requests in flight when a server process exits.
var errExited = errors.New("the MCP server exited")

// proc is one server process serving one MCP session: it writes
// messages to the server's stdin, one a line, and sorts what the server
// writes to its stdout into answers (by JSON-RPC id) and messages of its
// own (requests and notifications, for the session's GET stream).
type proc struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	started time.Time
	log     *slog.Logger
	events  chan []byte   // the server's own messages; dropped when full
	done    chan struct{} // closed once the process has exited

	wmu sync.Mutex // one message at a time on stdin

	mu       sync.Mutex
	waiting  map[string]chan []byte // request id → its answer
	stopping bool                   // the node ended it
	busy     int                    // requests and streams in flight
	idle     *time.Timer
}

// startProc starts cmd and reads its stdout and stderr until it exits;
// exited runs then.
func startProc(cmd *exec.Cmd, log *slog.Logger, maxMsg int, exited func(*proc)) (*proc, error) {
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, stdin: stdin, started: time.Now(), log: log.With("pid", cmd.Process.Pid),
		events: make(chan []byte, 64), done: make(chan struct{}), waiting: map[string]chan []byte{}}
	logged := make(chan struct{})
	go func() { p.logStderr(stderr); close(logged) }()
	go func() {
		p.read(stdout, maxMsg)
		<-logged
		err := cmd.Wait()
		p.log.Info("MCP server process exited", "status", exitStatus(err), "ran", time.Since(p.started).Round(time.Millisecond))
		exited(p) // before anyone waiting learns of it: the backoff is in force then
		p.mu.Lock()
		for id, ch := range p.waiting {
			close(ch)
			delete(p.waiting, id)
		}
		p.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// read sorts the server's stdout lines until it closes or writes a line
// too long or not JSON-RPC, which ends the process.
func (p *proc) read(r io.Reader, maxMsg int) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxMsg)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var head struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		if err := json.Unmarshal(line, &head); err != nil {
			p.log.Warn("MCP server wrote a line that is not JSON-RPC; stopping it", "err", err)
			break
		}
		msg := bytes.Clone(line)
		if head.Method != "" || len(head.ID) == 0 {
			select {
			case p.events <- msg:
			default:
				p.log.Warn("MCP server message dropped: no client is reading the session's stream", "method", head.Method)
			}
			continue
		}
		p.answer(idKey(head.ID), msg)
	}
	if err := sc.Err(); err != nil {
		p.log.Warn("MCP server output unreadable; stopping it", "err", err)
	}
	p.kill()
	io.Copy(io.Discard, r)
}

func (p *proc) answer(id string, msg []byte) {
	p.mu.Lock()
	ch := p.waiting[id]
	delete(p.waiting, id)
	p.mu.Unlock()
	if ch != nil {
		ch <- msg
	}
}

// logStderr logs each line the server writes to stderr.
func (p *proc) logStderr(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64<<10)
	for sc.Scan() {
		p.log.Info("MCP server: " + sc.Text())
	}
	io.Copy(io.Discard, r)
}

// call sends a request and returns the server's answer to it, or
// errExited.
func (p *proc) call(done <-chan struct{}, id json.RawMessage, msg []byte) ([]byte, error) {
	ch := make(chan []byte, 1)
	key := idKey(id)
	p.mu.Lock()
	p.waiting[key] = ch
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.waiting, key)
		p.mu.Unlock()
	}()
	if err := p.send(msg); err != nil {
		return nil, err
	}
	select {
	case ans, ok := <-ch:
		if !ok {
			return nil, errExited
		}
		return ans, nil
	case <-p.done:
		return nil, errExited
	case <-done:
		return nil, errors.New("the client went away")
	}
}

// send writes one message, on one line.
func (p *proc) send(msg []byte) error {
	var b bytes.Buffer
	if err := json.Compact(&b, msg); err != nil {
		return err
	}
	b.WriteByte('\n')
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if _, err := p.stdin.Write(b.Bytes()); err != nil {
		return errExited
	}
	return nil
}

// use marks a request or stream in flight; the returned function ends
// it, arming the idle timer when none is left.
func (p *proc) use(idle time.Duration) func() {
	p.mu.Lock()
	p.busy++
	p.idle.Stop()
	p.mu.Unlock()
	return func() {
		p.mu.Lock()
		p.busy--
		if p.busy == 0 {
			p.idle.Reset(idle)
		}
		p.mu.Unlock()
	}
}

// stop ends the process as MCP's stdio transport says: stdin closed,
// then SIGTERM, then SIGKILL, each after grace without an exit. It
// returns once the process has exited.
func (p *proc) stop(grace time.Duration) {
	p.mu.Lock()
	p.stopping = true
	p.mu.Unlock()
	p.wmu.Lock()
	p.stdin.Close()
	p.wmu.Unlock()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		select {
		case <-p.done:
			return
		case <-time.After(grace):
			syscall.Kill(-p.cmd.Process.Pid, sig)
		}
	}
	<-p.done
}

// kill ends the process group at once.
func (p *proc) kill() { syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL) }

func (p *proc) stoppedByNode() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopping
}

// idKey is a JSON-RPC id in a form that compares equal however it was
// spaced.
func idKey(id json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, id) != nil {
		return string(id)
	}
	return b.String()
}

func exitStatus(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ProcessState.String()
	}
	if err != nil {
		return err.Error()
	}
	return "exit status 0"
}
