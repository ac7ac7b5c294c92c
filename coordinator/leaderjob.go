package coordinator

import (
	"context"
	"sync"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
)

// leaderJob runs a job every interval, at once at start, while this
// replica leads the job's name (store.Leader): audit retention, IdP
// re-checks. A nil *leaderJob is a job that was never started.
type leaderJob struct {
	leader *store.Leader
	stop   context.CancelFunc
	wg     sync.WaitGroup
}

// startLeaderJob starts running run every interval while this replica
// leads name; close stops it.
func (s *Server) startLeaderJob(name string, interval time.Duration, run func(context.Context)) *leaderJob {
	ctx, stop := context.WithCancel(context.Background())
	j := &leaderJob{leader: s.store.Leader(name, sinkLeaderRetry), stop: stop}
	j.wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			if j.leader.IsLeader() {
				run(ctx)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
	return j
}

// close stops the job, waits for a run under way, and gives the claim up.
func (j *leaderJob) close() {
	if j == nil {
		return
	}
	j.stop()
	j.wg.Wait()
	j.leader.Close()
}
