package engine

import (
	"net"
	"sync"
)

// multiListener merges listeners on several addresses (a member's IPv4 and
// IPv6 mesh addresses) into one. Its goroutines end when Close returns.
type multiListener struct {
	ls    []net.Listener
	conns chan net.Conn
	done  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
	errMu sync.Mutex
	err   error
}

func newMultiListener(ls []net.Listener) *multiListener {
	m := &multiListener{ls: ls, conns: make(chan net.Conn), done: make(chan struct{})}
	for _, l := range ls {
		m.wg.Add(1)
		go m.accept(l)
	}
	return m
}

func (m *multiListener) accept(l net.Listener) {
	defer m.wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			m.errMu.Lock()
			if m.err == nil {
				m.err = err
			}
			m.errMu.Unlock()
			m.shutdown()
			return
		}
		select {
		case m.conns <- c:
		case <-m.done:
			c.Close()
			return
		}
	}
}

// Accept returns the next connection from any of the addresses.
func (m *multiListener) Accept() (net.Conn, error) {
	select {
	case c := <-m.conns:
		return c, nil
	case <-m.done:
		m.errMu.Lock()
		defer m.errMu.Unlock()
		if m.err != nil {
			return nil, m.err
		}
		return nil, net.ErrClosed
	}
}

// Close closes every underlying listener and waits for the accept loops.
func (m *multiListener) Close() error {
	m.shutdown()
	m.wg.Wait()
	return nil
}

func (m *multiListener) shutdown() {
	m.once.Do(func() {
		close(m.done)
		for _, l := range m.ls {
			l.Close()
		}
	})
}

// Addr returns the first address listened on.
func (m *multiListener) Addr() net.Addr { return m.ls[0].Addr() }
