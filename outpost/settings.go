package outpost

// Settings is the outpost's decoded configuration. (Being written.)
type Settings struct{}
