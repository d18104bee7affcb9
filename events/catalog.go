package events

import "time"

// Catalog lists every message type with an example value; the schema test validates
// each example against schemas/events/<type>.json, so the Go structs and the schemas
// cannot drift apart.
func Catalog() []Message {
	topic := Topic{
		ID: "outlook", Title: "Microsoft Outlook issues", Description: "d", Platforms: []string{"Windows"},
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
	return []Message{
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
			Cache: CacheSize{Devices: 12, Users: 11, Activities: 14},
		}}, Cache: CacheSize{Devices: 12, Users: 11, Activities: 14}},
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
				Diagnosis: &ProactiveDiagnosis{Topic: "outlook", Source: "live", DataAsOf: &seen,
					Findings:     []ProactiveFinding{{Rule: "crashed_plugins", Title: "Outlook add-ins crashed", Evidence: map[string]any{"CrashedPluginList": `["Grammarly"]`}}},
					Remediations: []ProactiveRemediation{{ID: "disable_plugins", Title: "Disable the crashing add-ins", RemoteAction: "#set_outlook_plugins", Params: map[string]string{"PluginNames": "Grammarly"}}}},
				Remediations: []ProactiveRemediation{{ID: "disable_plugins", Title: "Disable the crashing add-ins", RemoteAction: "#set_outlook_plugins", Params: map[string]string{"PluginNames": "Grammarly"}}},
				Message:      "Hi hjordan, Outlook has been crashing on PC-OUTLOOK-PLUGIN.",
				CreatedAt:    seen, UpdatedAt: seen}},
	}
}
