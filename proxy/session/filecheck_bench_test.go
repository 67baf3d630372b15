package session_test

import (
	"context"
	"testing"
	"time"

	"github.com/akoutpost/akoutpost/proxy/session"
)

// BenchmarkCheck compares what the proxy asks of a store on every request
// of a known session, in parallel, for the memory and the file store.
func BenchmarkCheck(b *testing.B) {
	file, err := session.NewFile(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, st := range []struct {
		name  string
		store session.Checker
	}{{"memory", &session.Memory{}}, {"file", file}} {
		b.Run(st.name, func(b *testing.B) {
			ctx := context.Background()
			s := st.store.(session.Store)
			if err := s.Save(ctx, session.Session{ID: "s", Provider: "p", Subject: "u", SID: "x",
				Expires: time.Now().Add(time.Hour), Data: make([]byte, 400)}); err != nil {
				b.Fatal(err)
			}
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := st.store.Check(ctx, "s"); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
