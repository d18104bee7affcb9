// Package ratelimit enforces call rates for the deployment as a whole (Shared) or for
// one process (Local), behind one interface: Take grants a call, perhaps after a
// wait, or refuses it with a *Limited that says when to retry.
//
// # Leases
//
// A shared limit is a GCRA budget in PostgreSQL (a row of rate_limits: the
// theoretical arrival time of the next cell, one cell per call). A replica does not
// take its calls from the row one by one: it leases cells in chunks, one statement
// for about a period (P = 100 ms) of its own recent demand, at most a period of the
// whole budget, and hands them out locally. Each cell has the time it conforms at in
// the budget; a replica never uses a cell before that time and drops it when it has
// been usable for H = 2P. A call that finds no cell asks for a lease when the last
// one brought everything it asked; when a lease brought less (the budget is spent)
// the replica asks again only after P × (0.5 to 1.5, at random, so replicas do not
// fall into step), or sooner for a caller that will wait longer than the last lease
// looked ahead, or for a caller within its fair share (below) that finds no cell, P/4
// after the last lease. A patient caller's lease reaches ahead by its patience (at
// most 10 s): it reserves cells that conform later, and the caller waits for its cell.
// A refused call costs no statement, and its Retry-After is when the next cell, leased
// or due in the database, can be had.
//
// Patience: a caller's patience is its wait budget (maxWait, cut by its context's
// deadline), counted from its call, so time spent waiting for leases counts against
// it. Within it a caller waits for leases in flight and, when the limiter cannot
// ask yet or keeps the cells for fairer callers, for its next chance, and takes a
// cell that conforms by its deadline; it is refused only when no cell can be had by
// then. Past it, at once for a caller that will not wait (a cache read), a call waits
// for two leases at most, its own or others': on a slow database the cells each lease
// brings may all go to other callers, and a call is refused rather than queued behind
// every next one. Only while the budget is short, though: when the last lease brought
// all it asked, a 429 would be a lost race, not a spent budget, and the next lease is
// sized for the callers waiting for it (a lease asks at least a cell per caller
// waiting, so a burst of callers at a large budget is served by one or two leases).
// A refill that starts before the cells run out is sent in the background: the
// caller that starts it has its cell and does not wait for the database. While the
// budget has room, a lease also asks for the demand of two round trips of a lease
// (measured, smoothed: on a busy replica a lease waits for a connection behind the
// queries), at most what the hold H keeps, and the refill starts when the cells left
// would last no longer than a quarter period and two round trips: the callers do not
// run dry while it is on its way. (Measured with the identify benchmark before: 45 of
// 64 requests in flight waited for a lease behind a 4-connection pool.)
//
// Statements: while the budget is spent, each busy replica sends one lease per 0.5 to
// 1.5 P, about 10 a second, whatever the rate of calls (at most 40 while callers within
// their fair share keep finding none); while it is not, a lease brings a period of
// demand, so again about 10 a second, one per call only when calls come more than a
// period apart. Measured with the cache's 500/s hammered by two and three replicas:
// 30 to 50 statements per 1 000 grants, against at least 1 000 for a statement per
// call. A failed lease answers every call with its error for 100 ms.
//
// # Error bound
//
// With rate r (one cell per I = 1/r) and burst B: the database never grants a cell
// twice, and the cells it grants, to every replica together, conform at least I
// apart; a granted cell conforms no earlier than (B-1)·I before its lease. A call in
// a window [t, t+T] uses a cell that conformed in [t-H-(B-1)·I, t+T], so with any
// number N of replicas a window of T holds at most B + r·(T + H) calls: for
// T = 10 s, the burst plus 2 % of the window. The whole burst is there only after
// the budget was idle for (B-1)·I; under sustained demand the credit in the database
// never exceeds what accrues between two leases (1.5 P) and the replicas hold cells at
// most H, so a 10 s window stays within r·(10 s + 0.35 s), 3.5 % over. After a spell
// of under-use (a starved machine, say) the burst is back, and a window may hold up to
// B + r·(T + H) again. On a fake clock (the tests run the limiter in a synctest
// bubble, where these figures are exact): every 10 s window of 22 s of 2 000 calls a
// second on each of two and three replicas held 4 930 to 5 040 grants for a budget of
// 5 000; with callers waiting up to 2 s for a 40/s budget on three replicas, every
// window held 400. Against PostgreSQL the tests check, in the database's clock, that
// the cells leased never exceed the budget for the time that passed.
//
// Under-use: an idle replica leases nothing, so its share accrues in the database
// and the busy replicas' next leases take it (on the fake clock: once a replica
// stops, the others get 95 % or more of the whole budget). What a replica holds when its demand
// stops, at most one period of the budget, is lost after H; so is credit beyond the
// burst, as in any token bucket.
//
// The row is the one earlier versions took a call at a time from, with the same
// meaning: during a rolling upgrade old and new replicas share one budget.
//
// # Fair share
//
// A caller named with WithCaller (the ingress passes the API key's id to the
// workers, which name it in TakeCacheRead) gets a max-min fair share when the budget
// is short at its replica, that is when the last lease brought less than asked or the
// replica alone asks more than the whole budget. Each replica measures each caller's
// demand (calls per second, granted or refused) and what it obtains itself, and at
// each lease computes the level at which callers asking less than it are served whole
// and those asking more share the rest equally. A caller within its share takes any
// cell; one above it takes none of a reserve kept for the callers within theirs (1.5
// times their demand over 1.5 periods and a cell, at most half a lease, at least one
// cell), and, when several are above it, waits while it has had more than 1.1 times
// the level. Callers above their share take the oldest cells, so the reserve is
// renewed at each lease rather than left to expire, and a small budget (10/s, a cell
// per lease) is neither left idle nor taken whole by the noisiest caller. Requests
// reach replicas through a queue group, so each replica sees the same mix of callers
// and the local shares add up to the deployment's. A key's own rate
// (api_keys.rate_limit_per_second) is a shared limit of its own, taken at the
// ingress; it bounds what the key asks here, hence its share.
package ratelimit
