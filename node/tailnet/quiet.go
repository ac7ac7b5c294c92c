package tailnet

import (
	"tailscale.com/envknob"
	"tailscale.com/logtail"
)

// quietLogs switches off every upload of logs to Tailscale's log service
// (log.tailscale.com) for the life of the process, before tsnet starts:
// no-logs-no-support mode (TS_NO_LOGS_NO_SUPPORT) makes tsnet's logtail
// transport a no-op that never dials, stops network flow logging, and is
// reported to the control server in the node's Hostinfo; logtail.Disable
// is the process-wide kill switch behind it. Prompts never reach those
// logs, but the node's peers, addresses and errors would.
func quietLogs() {
	envknob.SetNoLogsNoSupport()
	logtail.Disable()
}
