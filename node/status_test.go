package node

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/mesh/wire"
)

// A node without the lockdown says so in its status (rather than saying
// nothing, which the UI shows as "not reported").
func TestStatusWithoutLockdown(t *testing.T) {
	now := time.Now()
	n := &Node{}
	st := n.nodeStatus()
	if st.Lockdown == nil || st.Lockdown.Active || st.Lockdown.Error != "" || st.Integrity != nil {
		t.Fatalf("status %+v", st)
	}
	if st := lockdownStatus(nil, now); !st.Checked.Equal(now) {
		t.Errorf("checked %v, want %v", st.Checked, now)
	}
	b, _ := json.Marshal(st)
	if !strings.Contains(string(b), `"lockdown":{"active":false,`) {
		t.Errorf("status JSON %s", b)
	}
	var back wire.NodeStatus
	if err := json.Unmarshal(b, &back); err != nil || back.Lockdown == nil {
		t.Errorf("the coordinator cannot read it back: %v", err)
	}
}
