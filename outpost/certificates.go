package outpost

// Certificates fetches and caches certificate/key pairs. (Being written.)
type Certificates struct{}
