package proxy

import "sync"

// bufferPool recycles the reverse proxy's copy buffers: without one,
// httputil.ReverseProxy allocates and zeroes 32 KiB for every proxied
// response, which at thousands of requests a second is most of the garbage
// the outpost makes. The zero value is ready to use.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

// Put boxes a small slice header, not the 32 KiB array.
func (b *bufferPool) Put(s []byte) { b.p.Put(&s) }
