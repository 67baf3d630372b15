package outpost

// Client is the API client for the core. (Being written.)
type Client struct{}
