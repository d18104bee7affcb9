// Package nexthinkv6 is the upstream driver of a Nexthink V6 installation: one
// Portal and the Engines it lists. It implements upstream.Driver, so the workers
// call a V6 instance as they call an Infinity one.
//
//   - Saved queries run as their NXQL forms (package nxql's Form: one or more
//     NXQL queries, merged on a key and mapped back to the NQL columns), at each
//     Engine's GET|POST /2/query with platform=windows&platform=mac_os&format=json
//     and the NQL parameters as p1, p2, ...; the rows read as Infinity's do.
//   - Engines come from the configuration or from the Portal's
//     GET /api/configuration/v1/engines (Basic authentication, refreshed every
//     EngineListTTL). With a Memory, the list is recorded there when first read
//     and whenever it changes, so the status names an Engine no call has reached.
//   - A query about one device (a device_name or collector_uid parameter) goes to
//     the Engine that last saw it, when known (the seed's cross-engine wrapper);
//     otherwise, or when that Engine no longer has it, to every Engine, and the
//     copy with the latest last_seen wins: a device that moved keeps a stale copy
//     on the Engine it left. What a fan-out learns is trusted for RouteTTL; with a
//     Memory (PostgreSQL), routes are shared by every process: a discovery's
//     export writes every device's Engine, a fan-out that finds a device
//     elsewhere writes its new one, and each process reads a route again after
//     RouteCacheTTL. Other queries (a user's devices, the poller's grouped query,
//     discovery) go to every Engine and their rows are merged: one query per
//     Engine per tick. ExportStream streams: each Engine's answer, ordered by
//     device (or user), is decoded row by row and the answers are merged as they
//     arrive, so a moved device's copies meet without holding the fleet.
//   - Remote actions run through the Portal's POST /api/remoteaction/v2/run with
//     requestUid, deviceUids, the Engines' engineDatabaseUids (the devices'
//     Engines when all are known, else every Engine) and timeoutSeconds; their
//     results are read on the Engines with the poller's query.
//   - Each Engine and the Portal has its own limiter (MAX_ENGINE_REQUESTS_PER_SECOND
//     per Engine, MAX_PORTAL_REQUESTS_PER_SECOND per Portal).
//   - An Engine that fails DownAfter (3) calls in a row is marked down: it is
//     logged, reported by Health (and to Memory, for GET /api/v1/status),
//     skipped by every call (not waited on) and
//     probed again after ProbeEvery. A query about a device that no Engine up
//     has fails with CodeUnavailable naming the Engines that are down; a query
//     over every Engine answers with the Engines that are up.
//
// Failures are *nexthink.Error values (calls "nxql.query", "portal.engines",
// "portal.run"), so nexthink.Problem maps them as it maps Infinity's.
//
// Assumed where the V6 documentation is silent (nxsim's V6 mode makes the same
// choices): the Portal's engine list gives name, address, port, uid (the
// database UID) and status; an Engine's Web API answers on the Portal URL's
// scheme at address:port; the run names the remote action by the id the
// allow-list uses and answers one status per Engine with the device UIDs it
// took; the V6 Portal does not describe remote actions, so RemoteAction fails
// and the allow-list's declaration applies.
package nexthinkv6
