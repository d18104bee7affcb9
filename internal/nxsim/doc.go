// Package nxsim is a Nexthink tenant emulator: it serves, on one address, the token
// endpoint, the NQL API (execute v1 and v2, export, status, results files) and the
// Remote Actions API (list, details, execute) of one or more emulated tenants, each
// over its own synthetic fleet (package fleet), with the request validation and error
// bodies of Nexthink's OpenAPI documents (testdata/openapi, checked by
// TestConformance). Saved queries come from topics/*.yaml and config/queries.yaml and
// run through the NQL interpreter of internal/nql.
//
// Every tenant defines custom fields and a score on its devices (fleet.DynamicFields:
// device.#location, device.#department, device.score.device_health and its
// sub-score device.score.device_health.restart), and has saved discovery's device
// query with them added to its list, as a tenant that wants them cached would.
//
// # In-process use
//
//	in, err := nxsim.Start(ctx, nxsim.Config{
//		Addr:        "127.0.0.1:0",
//		FleetSize:   1000,
//		TopicsDir:   "../../topics",
//		QueriesFile: "../../config/queries.yaml",
//		Executions:  nxsim.ExecutionTiming{Pending: 50 * time.Millisecond, Running: 100 * time.Millisecond},
//	})
//	if err != nil { ... }
//	defer in.Close()
//	base := in.TenantURL("eu") // or in.URL(): the first tenant is also served at the root
//	// POST base+"/oauth2/default/v1/token" with Basic eu-client:eu-client-secret, then
//	// POST base+"/api/v2/nql/execute" {"queryId":"#get_device_basic_infos","parameters":{"username":"jdoe"}}
//
// NewServer(cfg) gives the same without listening (Handler() for httptest.NewServer).
//
// # Tenants and credentials
//
// Without Config.Tenants there are two tenants: "eu" (FleetSize devices named
// EU-000012..., plus the scenario devices below) and "us" (FleetSize/10 devices named
// US-000000..., no scenario devices). Each tenant is served at /tenants/<name>; the
// first also at the root. Token and API share the address. Each tenant has three
// credentials, "<name>-client" (permissions nql and remote_actions), "<name>-nql" (nql)
// and "<name>-ra" (remote_actions), each with the secret "<client id>-secret".
// Tokens are opaque, valid Config.TokenTTL (900 s), and only at the tenant that issued
// them. Times in rows are in the tenant's zone (Europe/Zurich) unless x-utc-times: true.
//
// # Scenario devices (first tenant)
//
// Each has exactly one problem and is otherwise healthy (Windows 11 laptop seen 5
// minutes ago, booted 2 days ago, Microsoft 365 16.x, OneDrive running, ~100 GB free,
// no startup or GPO issue, Outlook online, no crashed plugin, spooler running):
//
//	PC-OUTLOOK-OFFLINE  IsOnline "No" (status success)        user jdoe (John Doe, most recent device)
//	PC-OUTLOOK-PLUGIN   CrashedPluginList ["Grammarly"], outlook.exe crashes   hjordan (Hal Jordan)
//	PC-OFFICE-OUTDATED  Microsoft 365 15.0.4569                dprince (Diana Prince)
//	PC-ONEDRIVE         "OneDrive is installed but not running" pparker (Peter Parker)
//	PC-LOW-DISK         ~4 GB free over the last 24 h          asmith (Alice Smith)
//	PC-STARTUP          HighImpactCount 2, "Spotify,Teams Machine-Wide Installer"  tstark (Tony Stark)
//	PC-GPO              8.5 s applied + 4.0 s DC discovery     srogers (Steve Rogers)
//	PC-UPTIME           days_since_last_full_boot 21           nromanoff (Natasha Romanoff)
//	PC-PRINTER          SpoolerStatus Stopped, StuckJobs 3     bbanner (Bruce Banner)
//	PC-HEALTHY          healthy control                        bwayne (Bruce Wayne)
//	MAC-HEALTHY         healthy macOS                          jdoe (used 2 days ago)
//	PC-OFFLINE          offline (last seen 3 days ago)         ckent (Clark Kent)
//
// Users' UPN and e-mail are <name>@example.com. Open alerts exist for PC-OUTLOOK-PLUGIN
// (Outlook crashes), PC-LOW-DISK (Low disk space), PC-ONEDRIVE (OneDrive not running)
// and PC-STARTUP and PC-GPO (Slow PC).
//
// # Remote actions
//
// Data collection (apiEnabled): #get_outlook_online_windows, #get_outlook_plugin_crash_details_windows,
// #get_onedrive_status, #get_startup_impact_windows, #get_gpo_startup_impact_windows,
// #get_printer_status_windows. Remediation: #set_outlook_online, #set_outlook_plugins,
// #repair_office_365, #repair_outlook_ost_problem, #repair_onedrive, #disk_cleanup,
// #disable_application_from_startup_menu (input ApplicationNames, required),
// #update_group_policy_settings, #restart_print_spooler, #clear_print_queue; and
// #restart_device, not enabled for the API (execute answers 403). All are Windows-only:
// on a macOS device the execution fails at once.
//
// Execute decisions (undocumented by Nexthink): unknown collector UIDs are skipped and
// executions are created for the known ones; none known is 400 NO_VALID_DEVICES; an
// unknown remote action is 400 REMOTE_ACTION_NOT_FOUND (execute documents no 404);
// params not declared as inputs are 400 UNKNOWN_PARAMETER; expiresInMinutes defaults
// to 60. Executions go pending -> in_progress -> success|failure (Config.Executions),
// waiting_for_device while the device is offline (not seen in the last hour, or set
// offline) and expired after expiresInMinutes. A collector runs two at a time. Rows
// appear in remote_action.executions (request_id, status, status_details, outputs as
// a JSON string, inputs, time, purpose data_collection|remediation, trigger_method api)
// and, for data-collection actions, in the device's remote_action.<id>.execution.*
// fields. Successful remediations change the fleet so the next diagnosis is healthy;
// #disk_cleanup raises the device's free space in every performance event, the past
// 24 hours included. Only API-triggered executions are rows of remote_action.executions;
// the scheduled data collections show only in the device fields.
//
// # Control API
//
// Under /_nxsim/ at the root (first tenant) and at /tenants/<name>/_nxsim/; JSON bodies,
// errors {"error": "...", "line", "column"}:
//
//	GET  /_nxsim/healthz                 {"status":"ok"}
//	GET  /_nxsim/tenants                 (root only) Info of every tenant
//	GET  /_nxsim/info                    Info: devices, users, scenario devices, credentials, queries, remote actions
//	GET  /_nxsim/counters                Counters: total, endpoints {"POST /api/v2/nql/execute": n},
//	                                     responses {endpoint: {"200": n}}, queries {"#id": n}, remote_actions {"#id": n}
//	POST /_nxsim/counters/reset
//	GET|PUT /_nxsim/faults               Faults: {"latency": {"nql"|"export"|"act"|"token"|"*": {"fixed_ms","jitter_ms"}},
//	                                     "error_rate": 0..1, "error_status": 500|503, "rate_limit_rate": 0..1,
//	                                     "retry_after_seconds": n, "groups": ["nql",...], "down": ""|"503"|"close",
//	                                      "fail_next": n, "fail_status": 429|500|503}  (the next n calls fail)
//	GET|PUT /_nxsim/executions/settings  ExecutionSettings: {"pending_ms","running_ms","expire_after_ms",
//	                                     "fail_devices": ["PC-HEALTHY"], "fail_actions": ["#repair_onedrive"], "failure_details"}
//	GET  /_nxsim/executions/{requestId}  the executions of a request
//	GET|PUT /_nxsim/exports/settings     ExportSettings: {"delay_ms", "fail": bool, "row_limit": n (licence cap, status 206)}
//	GET  /_nxsim/devices?n=10&seed=1&platform=macOS&presence=offline   fleet devices drawn at random (reproducibly per seed): name, platform, presence (online, offline, long_unseen), last seen, user; scenarios=include to allow the named devices
//	POST /_nxsim/devices/online          {"devices": ["PC-OFFLINE"], "online": true}
//	POST /_nxsim/queries                 {"id": "#my_query", "nql": "devices | list name"} -> 201, or 400 with line/column
//	POST /_nxsim/tokens/expire           invalidates every token of the tenant
//	POST /_nxsim/alerts                  FireAlert: {"monitor": "Outlook crashes", "status": "open"|"closed",
//	                                     "device": "PC-OUTLOOK-PLUGIN", "user": "hjordan", "context", "priority", "tags",
//	                                     "webhook": {"url", "method": "POST"|"PUT"|"PATCH", "path", "payload": "{\"d\":\"{{device.name}}\"}",
//	                                     "auth": {"type": "basic", "username", "password"} | {"type": "bearer", "token"},
//	                                     "headers", "timeout_ms"}}
//	                                     -> {"alert": {field: value}, "webhook": {"url","method","status","body","error"}}
//
// Faults apply to the Nexthink paths only, never to /_nxsim/ or results files.
//
// # Exports
//
// Export runs the saved query with no row cap and writes the CSV (header row, then
// rows; GZIP and ZSTD compression supported) to a temporary file, streamed through a
// buffered writer; the results file URL (/tenants/<name>/_files/exports/<file>) needs
// no bearer token, is signed and expires 15 minutes after completion (403 with S3's
// AccessDenied XML after that). The query result itself is held in memory by
// nql.Plan.Run until the file is written.
package nxsim
