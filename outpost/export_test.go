package outpost

// Internals the black-box tests check directly, because waiting for them
// over a socket would take minutes.

// RefreshInterval exposes refreshInterval.
var RefreshInterval = refreshInterval

// ControlURL exposes the control channel URL of o for outpost pk.
func (o *Outpost) ControlURL(pk string, attempt int) string { return o.controlURL(pk, attempt) }
