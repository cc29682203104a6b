package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// outcome is what happened to one request; written only by the worker that
// sent it.
type outcome struct {
	status int    // 0: not sent; -1: transport error
	body   []byte // of a 2xx write, parsed after the clock stops
}

// drive is one timed phase's results.
type drive struct {
	outcomes   []outcome
	latency    *hdrhistogram.Histogram // µs; open loop: from the intended send time
	service    *hdrhistogram.Histogram // µs, from the actual send (open loop only)
	lateness   *hdrhistogram.Histogram // µs after the intended time a send started (open loop)
	late       int64
	sent, ok   int64
	unverified int64
	errors     map[string]int64 // by problem code or transport error class
	examples   map[string]string
	elapsed    time.Duration
	stoppedBy  string // "requests", "duration" or "cancelled"
}

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(1, 10*60*1_000_000, 3) }

// run sends g.reqs on the lanes: closed loop (each worker sends its next
// request as soon as the previous is answered, until the requests or
// --duration run out) or open loop (request i is due at start + i/rate; a
// worker sleeps until it is due, and latency counts from that due time, so
// queueing behind a slow server shows up instead of being omitted).
func (g *gen) run(ctx context.Context) *drive {
	n, workers := len(g.reqs), g.o.senders()
	d := &drive{outcomes: make([]outcome, n), latency: newHist(), errors: map[string]int64{}, examples: map[string]string{}}
	open := g.o.openLoop()
	if open {
		d.service, d.lateness = newHist(), newHist()
	}
	interval := time.Duration(0)
	if open {
		interval = time.Duration(float64(time.Second) / g.o.Rate)
	}
	var (
		next, done, late, unverified atomic.Int64
		mu                           sync.Mutex
		wg                           sync.WaitGroup
		cancelled                    atomic.Bool
	)
	bar := newBar(n, "sending", g.o.Quiet)
	stopBar := make(chan struct{})
	go func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				bar.set(int(done.Load()))
			case <-stopBar:
				return
			}
		}
	}()
	start := time.Now()
	deadline := start.Add(g.o.Duration)
	if open {
		deadline = deadline.Add(g.o.Grace)
	}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat, svc, lness := newHist(), newHist(), newHist()
			errs := map[string]int64{}
			examples := map[string]string{}
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					break
				}
				if ctx.Err() != nil {
					cancelled.Store(true)
					break
				}
				var intended time.Time
				if open {
					intended = start.Add(time.Duration(i) * interval)
					if wait := time.Until(intended); wait > 0 {
						time.Sleep(wait)
					}
				}
				t0 := time.Now()
				if t0.After(deadline) {
					break
				}
				r := &g.reqs[i]
				c := g.lanes[w%len(g.lanes)]
				if g.o.Scenario == scenarioSpread {
					c = g.lanes[r.merchant]
				}
				resp, err := c.Send(ctx, r.method, r.target, r.body, r.hdr)
				t1 := time.Now()
				if open {
					lat.RecordValue(max(1, t1.Sub(intended).Microseconds()))
					svc.RecordValue(max(1, t1.Sub(t0).Microseconds()))
					behind := t0.Sub(intended)
					lness.RecordValue(max(1, behind.Microseconds()))
					if behind > g.o.LateAfter {
						late.Add(1)
					}
				} else {
					lat.RecordValue(max(1, t1.Sub(t0).Microseconds()))
				}
				out := &d.outcomes[i]
				switch {
				case err != nil:
					out.status = -1
					class := transportClass(err)
					errs[class]++
					if _, ok := examples[class]; !ok {
						examples[class] = truncate(err.Error(), 200)
					}
				default:
					out.status = resp.Status
					if resp.Verified != nil {
						unverified.Add(1)
					}
					if resp.Status/100 == 2 {
						if r.method == http.MethodPost {
							out.body = resp.Body
						}
					} else {
						code := codeOf(resp.Status, resp.Body)
						errs[code]++
						if _, ok := examples[code]; !ok {
							examples[code] = truncate(string(resp.Body), 300)
						}
					}
				}
				done.Add(1)
			}
			mu.Lock()
			d.latency.Merge(lat)
			if open {
				d.service.Merge(svc)
				d.lateness.Merge(lness)
			}
			for k, v := range errs {
				d.errors[k] += v
			}
			for k, v := range examples {
				if _, ok := d.examples[k]; !ok {
					d.examples[k] = v
				}
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	d.elapsed = time.Since(start)
	close(stopBar)
	bar.set(int(done.Load()))
	bar.finish()
	d.late, d.unverified = late.Load(), unverified.Load()
	for _, out := range d.outcomes {
		if out.status != 0 {
			d.sent++
		}
		if out.status/100 == 2 {
			d.ok++
		}
	}
	switch {
	case cancelled.Load():
		d.stoppedBy = "cancelled"
	case d.sent < int64(n):
		d.stoppedBy = "duration"
	default:
		d.stoppedBy = "requests"
	}
	return d
}

// transportClass names a transport failure without its addresses.
func transportClass(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "transport: timeout"
	case errors.Is(err, syscall.ECONNRESET):
		return "transport: connection reset"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "transport: connection refused"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "transport: connection closed"
	case errors.Is(err, context.Canceled):
		return "transport: cancelled"
	}
	return "transport: other"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// problemBody is the part of an RFC 9457 problem the report needs.
type problemBody struct {
	Code string `json:"code"`
}

// codeOf is the problem+json code of an error response, or its status.
func codeOf(status int, body []byte) string {
	var p problemBody
	if json.Unmarshal(body, &p) == nil && p.Code != "" {
		return p.Code
	}
	return "http " + strconv.Itoa(status)
}
