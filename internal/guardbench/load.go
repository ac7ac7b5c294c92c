package guardbench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Target is one path to the upstream.
type Target struct {
	Name   string
	URL    string // base, e.g. http://127.0.0.1:8080
	Client *http.Client
}

// prompt is a typical chat request (about 400 bytes of prompt text).
const prompt = `{"model":"llama","max_tokens":256,"messages":[{"role":"system","content":"You are a helpful assistant for the finance team. Answer briefly and cite the policy section when you can."},{"role":"user","content":"Our travel policy says economy class for flights under six hours. I have a 7 hour flight to Singapore next month for the quarterly review; which class may I book, and who needs to approve it? Please also list what receipts I must keep."}]}`

var streamPrompt = strings.Replace(prompt, `{"model":"llama",`, `{"model":"llama","stream":true,`, 1)

// post sends one non-streamed request and reads the answer.
func post(t Target) error {
	resp, err := t.Client.Post(t.URL+"/v1/chat/completions", "application/json", strings.NewReader(prompt))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return fmt.Errorf("%s: status %d: %s", t.Name, resp.StatusCode, bytes.TrimSpace(b))
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return err
}

// Latency sends n requests one after the other and returns their times.
func Latency(t Target, n int) ([]time.Duration, error) {
	out := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		if err := post(t); err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
	}
	return out, nil
}

// Load is the result of a throughput run.
type Load struct {
	RPS float64
	// CPUPerReq is this process's CPU time (user and system) per request:
	// the callers', the upstream's and, for the guard, the guard's; not
	// nginx's, which runs in processes of its own. Less sensitive than
	// RPS to other load on the machine.
	CPUPerReq time.Duration
}

// Throughput runs conc callers for d.
func Throughput(t Target, conc int, d time.Duration) (Load, error) {
	cpu0 := cpuTime()
	var n atomic.Int64
	var first error
	var once sync.Once
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				if err := post(t); err != nil {
					once.Do(func() { first = err })
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	l := Load{RPS: float64(n.Load()) / d.Seconds()}
	if n.Load() > 0 {
		l.CPUPerReq = (cpuTime() - cpu0) / time.Duration(n.Load())
	}
	return l, first
}

// cpuTime is the CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// StreamStats are the times of streamed answers: to the first event, and
// each chunk's delivery (arrival at the client minus the upstream's send
// time).
type StreamStats struct {
	TTFT, Delivery []time.Duration
}

// Streams runs n streamed requests one after the other.
func Streams(t Target, n int, base time.Time) (StreamStats, error) {
	var st StreamStats
	for range n {
		if err := stream(t, base, &st); err != nil {
			return st, err
		}
	}
	return st, nil
}

func stream(t Target, base time.Time, st *StreamStats) error {
	start := time.Now()
	resp, err := t.Client.Post(t.URL+"/v1/chat/completions", "application/json", strings.NewReader(streamPrompt))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: stream status %d", t.Name, resp.StatusCode)
	}
	br := bufio.NewReader(resp.Body)
	first := true
	for {
		line, err := br.ReadSlice('\n')
		now := time.Now()
		if d, ok := bytes.CutPrefix(line, []byte("data: ")); ok && !bytes.HasPrefix(d, []byte("[DONE]")) {
			var ev struct{ Created int64 }
			if json.Unmarshal(d, &ev) == nil && ev.Created > 0 {
				if first {
					st.TTFT, first = append(st.TTFT, now.Sub(start)), false
				}
				st.Delivery = append(st.Delivery, now.Sub(base)-time.Duration(ev.Created))
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// Pct returns the p-th percentile (0..100) of ds.
func Pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(p/100*float64(len(s))))]
}
