package ratelimit

// NewSharedOn is NewShared on any Leaser, so tests can record the leases a replica
// takes (what the database granted it, in the database's clock).
func NewSharedOn(db Leaser) *Shared { return &Shared{db: db, limits: map[string]*leased{}} }
