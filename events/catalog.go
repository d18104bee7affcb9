package events

import "time"

// Catalog lists every message type with an example value; the schema test validates
// each example against schemas/events/<type>.json, so the Go structs and the schemas
// cannot drift apart.
func Catalog() []Message {
	topic := Topic{
		ID: "outlook", Title: "Microsoft Outlook issues", Description: "d", Platforms: []string{"Windows"},
		Phrases:      []string{"Outlook keeps crashing", "I cannot send emails"},
		Queries:      []string{"#diagnose_outlook_issues"},
		Remediations: []Remediation{{ID: "restart", Title: "Restart", Message: "Please restart"}},
	}
	seen := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	device := Device{
		CollectorUID: "cf05120d-508a-4b9f-a596-6c3865d118a1", Name: "PC-HEALTHY", Instance: "eu",
		Platform: "Windows", OSName: "Windows 11 Pro 23H2", OSVersion: "10.0.22631", HardwareType: "laptop",
		HardwareManufacturer: "Dell Inc.", HardwareModel: "Latitude 7440", LastSeen: &seen, LastActivity: &seen,
		ActivitySource: "session", User: "jdoe", MatchedBy: KeyUPN,
	}
	n := int64(12)
	run := DiscoveryRunInfo{ID: 7, Instance: "eu", Trigger: "schedule", StartedAt: seen, EndedAt: &seen, Outcome: "success",
		Attempts: 1, Devices: &n, Users: &n, Activities: &n, DataAsOf: &seen}
	exec := Execution{ID: "ex_0b9f6f3c2d8e4a71a5c3e1d2f4b6a890", RequestID: "6c1e5f0a-8b7d-4e2f-9a1b-3c4d5e6f7a8b",
		RemoteAction: "#disable_application_from_startup_menu",
		Device:       ExecutionDevice{Name: "PC-STARTUP", CollectorUID: "cf05120d-508a-4b9f-a596-6c3865d118a1", Instance: "eu"},
		Params:       map[string]string{"ApplicationNames": "Spotify"}, Status: StatusSuccess, StatusDetails: "Script executed successfully",
		Outputs: map[string]any{}, Reason: "Slow PC: startup apps", ExternalReference: "INC0012345", Topic: "slow_pc",
		Remediation: "disable_startup_apps", CreatedAt: seen, UpdatedAt: seen, ExpiresAt: seen.Add(time.Hour)}
	plugins := SuggestedRemedy{ID: "set_outlook_plugins", Title: "Set Outlook plugins", RemoteAction: "#set_outlook_plugins",
		Params: map[string]string{"PluginNames": "Grammarly"}, Ready: true, Rules: []string{"outlook_plugin_crashed"}}
	ost := SuggestedRemedy{ID: "repair_outlook_ost_problem", Title: "Repair Outlook OST Problem", RemoteAction: "#repair_outlook_ost_problem",
		Ready: true, Generic: true}
	return []Message{
		ActionsListRequest{Header: NewHeader(TypeActionsListRequest)},
		ActionsListReply{Header: NewHeader(TypeActionsListReply), Actions: []RemoteAction{{ID: "#disable_application_from_startup_menu",
			Title: "Disable Application from Startup menu", Purpose: "remediation", Platforms: []string{"Windows"},
			Inputs: []ActionInput{{Name: "ApplicationNames", Required: true, Description: "Comma-separated names"}}}}},
		ActionsTriggerRequest{Header: NewHeader(TypeActionsTriggerRequest), RemoteAction: exec.RemoteAction, Device: "PC-STARTUP",
			Params: exec.Params, Reason: exec.Reason, ExternalReference: exec.ExternalReference, IdempotencyKey: "b1946ac9-2f4e"},
		ActionsRemediateRequest{Header: NewHeader(TypeActionsRemediateRequest), Topic: "slow_pc", Remediation: "disable_startup_apps",
			Device: "PC-STARTUP", Reason: "Slow PC", IdempotencyKey: "b1946ac9-2f4e", Force: true},
		ActionsGetRequest{Header: NewHeader(TypeActionsGetRequest), ID: exec.ID},
		ExecutionsListRequest{Header: NewHeader(TypeExecutionsListRequest), Device: "PC-STARTUP",
			Statuses: []string{StatusPending, StatusWaitingForDevice}, Since: &seen, RemoteAction: exec.RemoteAction, Limit: 20,
			Cursor: "Aen6f2vVbu2sULi53hpwxSacEI7dhU4nF_HZ1mM7sTbTiqEpFkfJ5DA"},
		ExecutionsListReply{Header: NewHeader(TypeExecutionsListReply), Executions: []Execution{exec},
			NextCursor: "Aen6f2vVbu2sULi53hpwxSacEI7dhU4nF_HZ1mM7sTbTiqEpFkfJ5DA"},
		ExecutionReply{Header: NewHeader(TypeExecutionReply), Execution: exec, Replayed: true},
		ExecutionUpdatedEvent{Header: NewHeader(TypeExecutionUpdatedEvent), Execution: exec},
		TopicsListRequest{Header: NewHeader(TypeTopicsListRequest), Platform: "Windows"},
		TopicsListReply{Header: NewHeader(TypeTopicsListReply), Topics: []Topic{topic}},
		TopicsGetRequest{Header: NewHeader(TypeTopicsGetRequest), Topic: "outlook"},
		TopicsGetReply{Header: NewHeader(TypeTopicsGetReply), Topic: topic},
		DevicesIdentifyRequest{Header: NewHeader(TypeDevicesIdentifyRequest), Key: KeyUPN, Value: "jdoe@example.com"},
		DevicesIdentifyReply{Header: NewHeader(TypeDevicesIdentifyReply), Devices: []Device{device}, Source: SourceCache, DataAsOf: &seen},
		DevicesGetRequest{Header: NewHeader(TypeDevicesGetRequest), Device: "PC-HEALTHY"},
		DevicesGetReply{Header: NewHeader(TypeDevicesGetReply), Device: DeviceDetail{
			Device: device, UID: "1f5209c4-0166-4765-b4fa-29984d51deb1", LastLogonUser: "jdoe", LastLogonTime: &seen,
			Fields: map[string]any{"device.name": "PC-HEALTHY", "device.hardware.memory": 17179869184},
			Users:  []DeviceUser{{Name: "jdoe", UPN: "jdoe@example.com", LastActivity: seen, Source: "session"}},
		}, OtherMatches: []DeviceRef{{Instance: "us", CollectorUID: "c0ffee00-0000-4000-8000-000000000001", Name: "PC-HEALTHY", LastSeen: &seen}},
			Source: SourceCache, DataAsOf: &seen},
		DiscoveryRunRequest{Header: NewHeader(TypeDiscoveryRunRequest), Instance: "eu", RequestedBy: "key:key_0123456789abcdef"},
		DiscoveryRunReply{Header: NewHeader(TypeDiscoveryRunReply), Runs: []DiscoveryRunStart{{Instance: "eu", Status: RunStarted, RunID: 7}, {Instance: "us", Status: RunAlreadyRunning}}},
		DiscoveryFinishedEvent{Header: NewHeader(TypeDiscoveryFinished), Run: run, Up: true},
		StatusGetRequest{Header: NewHeader(TypeStatusGetRequest)},
		StatusGetReply{Header: NewHeader(TypeStatusGetReply), Instances: []InstanceStatus{{
			Name: "eu", State: "up", LastDiscovery: &run, LastSuccessAt: run.EndedAt, DataAsOf: run.DataAsOf, NextDiscoveryAt: &seen,
			Cache: CacheSize{Devices: 12, Users: 11, Activities: 14}, Upstream: "infinity",
		}, {
			Name: "dc", State: "up", LastDiscovery: &run, LastSuccessAt: run.EndedAt, DataAsOf: run.DataAsOf, NextDiscoveryAt: &seen,
			Cache: CacheSize{Devices: 30, Users: 25, Activities: 31}, Upstream: "v6", Engines: []EngineStatus{
				{Name: "engine-1", State: "up", LastSuccessAt: &seen, ObservedAt: &seen},
				{Name: "engine-2", State: "down", DownSince: &seen, LastSuccessAt: run.EndedAt, ConsecutiveFailures: 3,
					LastError: "nexthink dc: nxql.query on engine-2: no answer", ObservedAt: &seen},
				{Name: "engine-3", State: "unknown"},
			},
		}}, Cache: CacheSize{Devices: 42, Users: 36, Activities: 45}},
		WebhookReceived{Header: Header{Type: TypeWebhookReceived, ID: "wh_5f0c2a1d9b3e4f60718293a4b5c6d7e8", Time: seen},
			Source: "nexthink", DedupeKey: "nexthink:id:7d1c6a9e", DeliveryID: "7d1c6a9e", Method: "POST",
			ContentType: "application/json", RequestID: "9d06ecaac7b8ddb7525220dbba947148",
			Payload: []byte(`{"monitor":"Outlook crashes","status":"open","device":"PC-OUTLOOK-PLUGIN","user":"hjordan"}`)},
		ProactiveEventChanged{Header: Header{Type: TypeProactiveEventChanged, ID: "pd_42", Time: seen}, Kind: ProactiveOpened,
			Event: ProactiveEvent{ID: "pe_0b9f6f3c2d8e4a71a5c3e1d2f4b6a890", Cursor: "17", Status: "open", Source: "nexthink",
				WebhookID: "wh_5f0c2a1d9b3e4f60718293a4b5c6d7e8", Monitor: "Outlook crashes", Topic: "outlook",
				Employee: &ProactiveEmployee{Name: "hjordan", UPN: "hjordan@example.com"},
				Device:   &ProactiveDevice{Name: "PC-OUTLOOK-PLUGIN", CollectorUID: "cf05120d-508a-4b9f-a596-6c3865d118a1", Instance: "eu", Platform: "Windows"},
				Alert:    ProactiveAlert{Status: "open", TriggerTime: &seen, Context: map[string]any{"crashes": 4}, Priority: "high"},
				Diagnosis: &ProactiveDiagnosis{Topic: "outlook", Source: "live", DataAsOf: &seen, Verdict: "problems_found",
					Findings: []ProactiveFinding{{Rule: "outlook_plugin_crashed", Title: "An Outlook add-in crashed", Evidence: map[string]any{"CrashedPluginList": `["Grammarly"]`}}},
					Rules: []RuleResult{{Rule: "outlook_plugin_crashed", Title: "An Outlook add-in crashed", Status: "found"},
						{Rule: "restart_overdue", Title: "The device has not been restarted for more than 10 days", Status: "clear"}},
					Remediations: []SuggestedRemedy{plugins, ost}},
				Assessment:   AssessFixAvailable,
				Remediations: []SuggestedRemedy{plugins, ost},
				Message:      "Hi hjordan, Outlook has been crashing on PC-OUTLOOK-PLUGIN. I checked it: an Outlook add-in crashed. I can fix this for you now (Set Outlook plugins): shall I?",
				CreatedAt:    seen, UpdatedAt: seen}},
		DiagnoseRequest{Header: NewHeader(TypeDiagnoseRequest), Topic: "outlook", Device: "PC-OUTLOOK-PLUGIN", Refresh: true},
		DiagnoseReply{Header: NewHeader(TypeDiagnoseReply), Diagnosis: exampleDiagnosis(seen)},
		NQLRequest{Header: NewHeader(TypeNQLRequest), QueryID: "#l1_device_checklist", Parameters: map[string]string{"device_name": "PC-HEALTHY"}, Instance: "eu"},
		NQLReply{Header: NewHeader(TypeNQLReply), QueryID: "#l1_device_checklist", Headers: []string{"device.name", "device.hardware.memory"},
			Rows: []map[string]any{{"device.name": "PC-HEALTHY", "device.hardware.memory": 17179869184}}, Source: SourceCache, Instance: "eu", DataAsOf: &seen},
		NQLExportRequest{Header: NewHeader(TypeNQLExportRequest), QueryID: "#dexbridge_discovery_devices", Parameters: map[string]string{"platform": "Windows"},
			Instance: "eu", Format: ExportNDJSON},
		NQLExportStarted{Header: NewHeader(TypeNQLExportStarted), QueryID: "#dexbridge_discovery_devices", Headers: []string{"device.name", "device.last_seen"},
			Instance: "eu", Format: ExportNDJSON, ContentType: "application/x-ndjson", DataAsOf: seen},
		NQLExportFinished{Header: NewHeader(TypeNQLExportFinished), Rows: 1450},
		TopicsReloadRequest{Header: NewHeader(TypeTopicsReloadRequest), RequestedBy: "key:key_0123456789abcdef"},
		TopicsReloadReply{Header: NewHeader(TypeTopicsReloadReply), Worker: "hbDgUgBdvVDP4Nt0yrkd5E", Status: ReloadRefused,
			Problems: []string{"topics/outlook.yaml: rules[0].when: rule outlook_offline: undeclared reference to 'IsOnlin'"},
			Topics:   6, Queries: 17, LoadedAt: seen},
	}
}

// exampleDiagnosis is the catalogue's diagnosis: the Outlook topic on a device with a
// crashed add-in, after a refresh.
func exampleDiagnosis(at time.Time) Diagnosis {
	const plugins = "remote_action.get_outlook_plugin_crash_details_windows.execution.outputs.CrashedPluginList"
	const crashTime = "remote_action.get_outlook_plugin_crash_details_windows.execution.time"
	device := ExecutionDevice{Name: "PC-OUTLOOK-PLUGIN", CollectorUID: "cf05120d-508a-4b9f-a596-6c3865d118a1", Instance: "eu"}
	seen, collected := at.Add(-time.Minute), at.Add(-2*time.Minute)
	diagnosed := device
	diagnosed.LastSeen, diagnosed.Presence = &seen, PresenceOnline
	return Diagnosis{
		ID: "dg_0b9f6f3c2d8e4a71a5c3e1d2f4b6a890", Topic: "outlook", Device: diagnosed, Verdict: VerdictProblemsFound,
		VerdictReasons: []VerdictReason{{Code: ReasonRulesNotEvaluated, Rules: []string{"office_outdated"},
			Message: "1 of 3 rules could not be evaluated (office_outdated); each rule's reason says why"}},
		Fields: map[string]any{"device.name": "PC-OUTLOOK-PLUGIN", plugins: `["Grammarly"]`, "device.boot.days_since_last_full_boot": 2,
			crashTime: collected.Format(time.RFC3339), "device.last_seen": seen.Format(time.RFC3339)},
		FieldTimes: map[string]FieldTime{
			"device.name":                           {AsOf: &seen, From: "device.last_seen"},
			"device.boot.days_since_last_full_boot": {AsOf: &seen, From: "device.last_seen"},
			"device.last_seen":                      {AsOf: &seen, From: "device.last_seen"},
			plugins:                                 {AsOf: &collected, From: crashTime},
		},
		Findings: []Finding{{Rule: "outlook_plugin_crashed", Title: "An Outlook add-in crashed", Evidence: map[string]any{plugins: `["Grammarly"]`}, Remediations: []string{"set_outlook_plugins"}}},
		Rules: []RuleResult{
			{Rule: "outlook_plugin_crashed", Title: "An Outlook add-in crashed", Status: "found", Evidence: map[string]any{plugins: `["Grammarly"]`}},
			{Rule: "restart_overdue", Title: "The device has not been restarted for more than 10 days", Status: "clear",
				Evidence: map[string]any{"device.boot.days_since_last_full_boot": 2}},
			{Rule: "office_outdated", Title: "Microsoft Office is out of date", Status: "not_evaluated",
				Reason: "outdated_office_packages is null (no data)", Evidence: map[string]any{"outdated_office_packages": nil}},
		},
		Remediations: []SuggestedRemedy{
			{ID: "set_outlook_plugins", Title: "Set Outlook plugins", RemoteAction: "#set_outlook_plugins", Ready: true, Rules: []string{"outlook_plugin_crashed"}},
			{ID: "repair_outlook_ost_problem", Title: "Repair Outlook OST Problem", RemoteAction: "#repair_outlook_ost_problem", Ready: true, Generic: true,
				InProgress: &RemedyInProgress{ExecutionID: "ex_7d1c6a9e0b9f6f3c2d8e4a71a5c3e1d2", Status: StatusWaitingForDevice, CreatedAt: at}},
		},
		Refreshed: []Execution{{ID: "ex_5f0c2a1d9b3e4f60718293a4b5c6d7e8", RequestID: "8a1e1d0b-8d6f-4a43-a3c9-0a6c9a8b7c61",
			RemoteAction: "#get_outlook_plugin_crash_details_windows", Device: device, Status: StatusSuccess,
			Outputs: map[string]any{"CrashedPluginList": `["Grammarly"]`}, CreatedAt: at, UpdatedAt: at, ExpiresAt: at.Add(time.Hour)}},
		Source: "live", DataAsOf: &collected, MaxAgeSeconds: 86400, DiagnosedAt: at,
		Timing: map[string]int64{"resolve": 2, "refresh": 41250, "queries": 310, "total": 41570},
	}
}
