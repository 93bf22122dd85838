package feed

import (
	"errors"
	"sync"
	"testing"
)

// TestFanout_Memo_Waiters: followers asking for a value while it is built
// wait for that one build and all get it; a build that panics leaves no
// one waiting for ever, and they get an error, not a value.
func TestFanout_Memo_Waiters(t *testing.T) {
	shared := Page{memo: &memo{}}
	started, release := make(chan struct{}), make(chan struct{})
	var builds int
	var wg sync.WaitGroup
	wg.Go(func() {
		v, err := shared.Memo("k", func() (any, error) {
			builds++
			close(started)
			<-release
			return "body", nil
		})
		if v != "body" || err != nil {
			t.Errorf("builder got %v, %v", v, err)
		}
	})
	<-started
	for range 8 {
		wg.Go(func() {
			if v, err := shared.Memo("k", func() (any, error) { t.Error("built twice"); return nil, nil }); v != "body" || err != nil {
				t.Errorf("waiter got %v, %v", v, err)
			}
		})
	}
	close(release)
	wg.Wait()
	if builds != 1 {
		t.Fatalf("%d builds", builds)
	}

	started = make(chan struct{})
	release = make(chan struct{})
	wg.Go(func() {
		defer func() {
			if recover() == nil {
				t.Error("the builder's panic was swallowed")
			}
		}()
		shared.Memo("p", func() (any, error) {
			close(started)
			<-release
			panic("boom")
		})
	})
	<-started
	got := make(chan error, 1)
	wg.Go(func() {
		v, err := shared.Memo("p", func() (any, error) { return "again", nil })
		if v != nil {
			t.Errorf("after a panicked build: value %v", v)
		}
		got <- err
	})
	close(release)
	wg.Wait()
	if err := <-got; !errors.Is(err, errMemoPanic) {
		t.Fatalf("after a panicked build: %v", err)
	}
}
