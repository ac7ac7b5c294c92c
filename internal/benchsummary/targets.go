package benchsummary

// Targets are the figures the open issues set goals for, in the order
// of the [perf] issue's items. A figure a run did not produce shows as
// "not measured".
var Targets = []Target{
	{Issue: "perf 1", What: "guard alone req/s ÷ nginx's, c=64, screening off", Key: "ratio guard_plain_rps/nginx_rps", Goal: 1.0, Unit: "×"},
	{Issue: "perf 1", What: "guard alone req/s ÷ nginx's, c=64, screening on", Key: "ratio guard_lo_rps/nginx_rps", Goal: 0.8, Unit: "×"},
	{Issue: "perf 1", What: "guard alone req/s ÷ Caddy's (Debian's 2.6.2), c=64, screening on", Key: "ratio guard_lo_rps/caddy_rps", Goal: 1.0, Unit: "×"},
	{Issue: "perf 1", What: "guard alone added p50 vs direct", Key: "metric guard_lo_added_p50_us", AtMost: true, Goal: 100, Unit: " µs"},
	{Issue: "perf 1", What: "guard alone added inter-chunk p99 vs direct", Key: "metric guard_lo_added_chunk_p99_us", AtMost: true, Goal: 50, Unit: " µs"},
	{Issue: "perf 2", What: "guard behind netstack req/s ÷ guard alone", Key: "ratio guard_rps/guard_lo_rps", Goal: 0.8, Unit: "×"},
	{Issue: "perf 3", What: "netmap fan-out to 10,000 devices, policy save p99", Key: "BenchmarkNetmapFanout10k save-p99-ms", AtMost: true, Goal: 1000, Unit: " ms"},
	{Issue: "perf 3", What: "netmap fan-out to 10,000 devices, revocation p99", Key: "BenchmarkNetmapFanout10k revoke-p99-ms", AtMost: true, Goal: 250, Unit: " ms"},
	{Issue: "perf 3", What: "netmap fan-out to 10,000 devices, peak heap", Key: "BenchmarkNetmapFanout10k peak-heap-MiB", AtMost: true, Goal: 2048, Unit: " MiB"},
	{Issue: "perf 3", What: "netmap fan-out to 50,000 devices, policy save p99", Key: "BenchmarkNetmapFanout50k save-p99-ms", AtMost: true, Goal: 2000, Unit: " ms"},
	{Issue: "perf 3", What: "netmap fan-out to 50,000 devices, revocation p99", Key: "BenchmarkNetmapFanout50k revoke-p99-ms", AtMost: true, Goal: 250, Unit: " ms"},
	{Issue: "perf 3", What: "netmap fan-out to 50,000 devices, peak heap", Key: "BenchmarkNetmapFanout50k peak-heap-MiB", AtMost: true, Goal: 2048, Unit: " MiB"},
	{Issue: "perf 4", What: "TUN engine throughput ÷ raw veth", Key: "ratio tun/veth", Goal: 0.2, Unit: "×"},
	{Issue: "perf 5", What: "employee path (router+mesh+guard) added p50 vs direct", Key: "metric router_added_p50_us", AtMost: true, Goal: 300, Unit: " µs"},
	{Issue: "perf 5", What: "router's own share of p50 (router path − guard path)", Key: "metric router_own_p50_us", AtMost: true, Goal: 100, Unit: " µs"},
	{Issue: "reach", What: "relayed ÷ direct throughput, netstack pair", Key: "ratio relayed/direct", Goal: 0.5, Unit: "×"},
	{Issue: "reach", What: "relayed ÷ direct throughput, TUN pair", Key: "ratio tun-relayed/direct", Goal: 0.5, Unit: "×"},
	// The guard's own call for a chat request with a 4 KiB user message
	// (node/guard BenchmarkScreenInput4K: the JSON walk, the scan and the
	// rewrite into a pooled buffer), not the scan of plain text alone.
	{Issue: "screening", What: "4 KiB prompt, every category on, p99", Key: "BenchmarkScreenInput4K/EveryCategory p99-µs", AtMost: true, Goal: 150, Unit: " µs"},
	{Issue: "screening", What: "streamed chunk, every category on, p99", Key: "BenchmarkStreamChunkEveryCategory p99-µs", AtMost: true, Goal: 20, Unit: " µs"},
	{Issue: "mcp", What: "MCP tools/call through the guard, added p50 at c=1", Key: "metric mcp_added_p50_us", AtMost: true, Goal: 150, Unit: " µs"},
}
