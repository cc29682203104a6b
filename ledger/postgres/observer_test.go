package postgres

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// batchLog is an Observer that records every call; hold, while set, blocks
// the writer inside the first call so the queue behind it can be seen.
type batchLog struct {
	mu      sync.Mutex
	sizes   []int
	commits []time.Duration
	held    chan struct{} // closed when the writer is blocked in BatchCommitted
	release chan struct{}
}

func (b *batchLog) BatchCommitted(size int, commit time.Duration) {
	b.mu.Lock()
	b.sizes, b.commits = append(b.sizes, size), append(b.commits, commit)
	first := len(b.sizes) == 1
	b.mu.Unlock()
	if first && b.release != nil {
		close(b.held)
		<-b.release
	}
}

// TestObserverSeesEveryCommittedEntry: the observer hears one call per
// committed transaction, whose sizes add up to the entries in the table (an
// idempotent repeat writes nothing and is not counted), each with a commit
// time; QueueDepth counts the entries waiting while the writer is busy.
func TestObserverSeesEveryCommittedEntry(t *testing.T) {
	obs := &batchLog{held: make(chan struct{}), release: make(chan struct{})}
	s, _ := newStore(t, Options{MaxBatch: 8, Observer: obs})
	// The first entry's answer waits for the observer, which holds the writer.
	first := make(chan error, 1)
	go func() { _, err := s.Record(context.Background(), deposit("ORD-OBS-0", "u1", 100)); first <- err }()
	select {
	case <-obs.held:
	case err := <-first:
		t.Fatalf("first entry answered before the observer heard of it: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no batch committed in 10s")
	}
	if d := s.QueueDepth(); d != 0 {
		t.Fatalf("queue depth %d with nothing waiting", d)
	}
	const waiting = 20
	var wg sync.WaitGroup
	for i := 1; i <= waiting; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Record(context.Background(), deposit(fmt.Sprintf("ORD-OBS-%d", i), "u1", 100)); err != nil {
				t.Errorf("Record %d: %v", i, err)
			}
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.QueueDepth() < waiting && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if d := s.QueueDepth(); d != waiting {
		t.Fatalf("queue depth %d, want %d entries waiting for the blocked writer", d, waiting)
	}
	close(obs.release)
	if err := <-first; err != nil {
		t.Fatalf("first entry: %v", err)
	}
	wg.Wait()
	mustRecord(t, s, deposit("ORD-OBS-3", "u1", 100)) // idempotent repeat: no write
	if d := s.QueueDepth(); d != 0 {
		t.Errorf("queue depth %d after the writer caught up", d)
	}

	obs.mu.Lock()
	defer obs.mu.Unlock()
	total := 0
	for i, n := range obs.sizes {
		if n < 1 || n > 8 {
			t.Errorf("batch %d has %d entries, outside 1..MaxBatch", i, n)
		}
		if obs.commits[i] <= 0 {
			t.Errorf("batch %d: commit took %v", i, obs.commits[i])
		}
		total += n
	}
	if want := countEntries(t, s); int64(total) != want || want != waiting+1 {
		t.Errorf("observer saw %d entries in %d batches; the table has %d, want %d", total, len(obs.sizes), want, waiting+1)
	}
	if len(obs.sizes) < (waiting+7)/8+1 {
		t.Errorf("%d batches for %d entries with MaxBatch 8", len(obs.sizes), waiting+1)
	}
}
