package syncbuf_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/akoutpost/akoutpost/internal/syncbuf"
)

// Writers and a reader at once lose nothing (and, under -race, race on
// nothing).
func TestConcurrentWrites(t *testing.T) {
	var b syncbuf.Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				b.Write([]byte("line\n"))
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if got := strings.Count(b.String(), "line\n"); got != 800 {
		t.Errorf("%d lines, want 800", got)
	}
}
