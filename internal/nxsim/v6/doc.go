// Package v6 is nxsim's V6 mode: a Nexthink V6 Portal and several Engines over
// one synthetic fleet (package fleet, the one the Infinity mode answers), each
// server on its own address, so a V6 driver talks to them as to real appliances.
//
//	s, err := v6.Start(ctx, v6.Config{Engines: 2, FleetSize: 1000})
//	defer s.Close()
//	// GET  s.PortalURL()+"/api/configuration/v1/engines"      Basic nxsim:nxsim-secret
//	// GET  http://<address>:<port>/2/query?query=(select (name) (from device))&platform=windows&platform=mac_os&format=json
//	// POST s.PortalURL()+"/api/remoteaction/v2/run"
//
// # Engines
//
// GET|POST /2/query with query, platform (repeated; default windows), format (json
// or csv; default json) and p1, p2, ... for %1, %2, ... in the query, in the URL
// or as a form body; Basic authentication. Queries run through package nxql
// (its documentation lists the language and the data model, and what is
// assumed). JSON results are an array of objects keyed by column in select
// order; CSV results a header row and the rows. Errors are HTML pages, as the
// Engines answer them: an element error_message and, for an unknown name, a list
// error_options; 400 for a bad query, 401 without valid credentials.
//
// Devices are spread over the Engines by a hash of their index (Info lists
// where each scenario device is). A share of them (Config.MovedShare, at least
// one) moved: the Engine they left still lists them, last seen two days before
// their current last_seen and without the events since, and the Engine that owns
// them now is authoritative. Remote-action executions are visible on the owner
// only. Users are listed by every Engine that holds one of their devices.
//
// # Portal
//
//	GET  /api/configuration/v1/engines   [{"name":"engine-1","address":"127.0.0.1","port":41003,
//	                                       "uid":"<database uid>","status":"CONNECTED"}, ...]
//	POST /api/remoteaction/v2/run        {"requestUid","remoteActionUid","deviceUids",
//	                                      "engineDatabaseUids","timeoutSeconds","params"}
//
// Both take Basic authentication. Documented by Nexthink for the run: POST only
// (GET is a 404); requestUid, engineDatabaseUids, timeoutSeconds (default 60) and
// params optional; unknown parameter names ignored; the call goes to every
// connected Engine or to the listed ones and returns when they answered or the
// timeout passed; success does not guarantee the execution. nxsim's choices: the
// remote action is named by its UUID (or its NQL id); deviceUids are collector
// UIDs, each Engine taking the devices it owns; the answer is
// {"requestUid", "engines": [{"uid","name","status","deviceUids"}]} with status
// OK, TIMEOUT (slower than timeoutSeconds), UNAVAILABLE (down) or REFUSED; an
// execution whose device does not start it within timeoutSeconds (an offline
// device) expires. Errors are {"code","message"} with 400, 401, 403 (not enabled
// for the API) or 404 (unknown remote action). The engine list's field names
// beyond name, address and status are nxsim's. Results are read with NXQL on the
// Engine that owns the device: the remote_action_execution table by
// request_uid, or the device's #"action:<id>/<output>" fields.
//
// # Control API (on the Portal, no authentication)
//
//	GET  /_nxsim/healthz
//	GET  /_nxsim/info                          Info: engines (url, devices, faults), moved devices, scenario placement
//	GET  /_nxsim/counters                      {"engine-1": {"calls", "queries"}, ...}
//	POST /_nxsim/counters/reset
//	GET|PUT /_nxsim/engines/{name}/faults      Faults: {"down": true, "latency_ms": n, "refuse_status": 429|500|503,
//	                                           "retry_after_seconds": n}
//	GET|PUT /_nxsim/executions/settings        nxsim.ExecutionSettings
//	GET  /_nxsim/executions/{requestUid}       the executions of a run
//	POST /_nxsim/devices/online                {"devices": ["PC-OFFLINE"], "online": true}
package v6
