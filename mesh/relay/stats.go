package relay

import (
	"bufio"
	"expvar"
	"io"
	"strconv"
	"strings"
)

// Drops returns how many packets the relays of this process have dropped
// since it started, by DERP's reason ("queue_head": a member's send queue
// was full, sendQueueDepth; "unknown_dest", "write_error", …). DERP keeps
// these counts for the whole process, not per Server. Nil when DERP's
// counter is not there.
func Drops() map[string]int64 {
	v, ok := expvar.Get("derp_packets_dropped").(interface {
		WritePrometheus(io.Writer, string)
	})
	if !ok {
		return nil
	}
	var b strings.Builder
	v.WritePrometheus(&b, "d")
	return parseDrops(b.String())
}

// parseDrops reads DERP's counter in Prometheus's text format, lines
// such as `d{reason="queue_head",kind="other"} 12`, and sums the kinds of
// each reason.
func parseDrops(text string) map[string]int64 {
	drops := map[string]int64{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		_, rest, ok := strings.Cut(line, `reason="`)
		if !ok {
			continue
		}
		reason, rest, ok := strings.Cut(rest, `"`)
		if !ok {
			continue
		}
		_, num, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
		if err != nil {
			continue
		}
		drops[reason] += n
	}
	return drops
}

// DropTotal is the sum of Drops.
func DropTotal() int64 {
	var n int64
	for _, v := range Drops() {
		n += v
	}
	return n
}
