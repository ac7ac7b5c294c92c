package mcpguard

import "sync"

// sessions binds the Mcp-Session-Id a server issues to the caller (its
// WireGuard key) whose initialize it answered.
type sessions struct {
	max int // per caller
	mu  struct {
		sync.Mutex
		owner map[string]string   // session key → caller key
		order map[string][]string // caller key → its session keys, oldest first
	}
}

func newSessions(max int) *sessions {
	s := &sessions{max: max}
	s.mu.owner = map[string]string{}
	s.mu.order = map[string][]string{}
	return s
}

// sessionKey scopes a session ID to its server: two servers may issue
// the same ID.
func sessionKey(server, id string) string { return server + "\x00" + id }

// bind records that caller owns session id of server, forgetting the
// caller's oldest session beyond the limit.
func (s *sessions) bind(server, id, caller string) {
	k := sessionKey(server, id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.mu.owner[k]; ok {
		return // an ID is bound once, to whoever saw it issued first
	}
	s.mu.owner[k] = caller
	list := append(s.mu.order[caller], k)
	if len(list) > s.max {
		delete(s.mu.owner, list[0])
		list = list[1:]
	}
	s.mu.order[caller] = list
}

// owner returns the caller key session id of server is bound to, or "".
func (s *sessions) owner(server, id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.owner[sessionKey(server, id)]
}

// drop forgets session id of server.
func (s *sessions) drop(server, id string) {
	k := sessionKey(server, id)
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.mu.owner[k]
	if !ok {
		return
	}
	delete(s.mu.owner, k)
	list := s.mu.order[c]
	for i, x := range list {
		if x == k {
			s.mu.order[c] = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(s.mu.order[c]) == 0 {
		delete(s.mu.order, c)
	}
}
