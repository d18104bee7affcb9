package nxsim

import (
	"strings"

	"github.com/dexbridge/dexbridge/internal/nxsim/fleet"
)

// remoteAction is a remote action of the tenant's library, shaped as the Remote
// Actions API's RemoteAction schema.
type remoteAction struct {
	ID                    string     `json:"id"`
	UUID                  string     `json:"uuid"`
	Name                  string     `json:"name"`
	Description           string     `json:"description"`
	Origin                string     `json:"origin"`
	BuiltInContentVersion string     `json:"builtInContentVersion"`
	Purpose               []string   `json:"purpose"`
	Targeting             targeting  `json:"targeting"`
	ScriptInfo            scriptInfo `json:"scriptInfo"`
}

type targeting struct {
	APIEnabled                 bool `json:"apiEnabled"`
	ManualEnabled              bool `json:"manualEnabled"`
	WorkflowEnabled            bool `json:"workflowEnabled"`
	ManualAllowMultipleDevices bool `json:"manualAllowMultipleDevices"`
}

type scriptInfo struct {
	ExecutionServiceDelegate string   `json:"executionServiceDelegate"`
	RunAs                    string   `json:"runAs"`
	TimeoutSeconds           int      `json:"timeoutSeconds"`
	HasScriptWindows         bool     `json:"hasScriptWindows"`
	HasScriptMacOs           bool     `json:"hasScriptMacOs"`
	Inputs                   []input  `json:"inputs"`
	Outputs                  []output `json:"outputs"`
}

type input struct {
	ID               string   `json:"id"`
	Name             string   `json:"name"`
	Description      string   `json:"description"`
	UsedByWindows    bool     `json:"usedByWindows"`
	UsedByMacOs      bool     `json:"usedByMacOs"`
	Options          []string `json:"options"`
	AllowCustomValue bool     `json:"allowCustomValue"`
	required         bool
}

type output struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	Type          string `json:"type"`
	Description   string `json:"description"`
	UsedByWindows bool   `json:"usedByWindows"`
	UsedByMacOs   bool   `json:"usedByMacOs"`
}

// Purposes.
const (
	purposeDataCollection = "DATA_COLLECTION"
	purposeRemediation    = "REMEDIATION"
)

// outputTypes are the types of the data-collection outputs.
var outputTypes = map[string]string{
	"HighImpactCount": "INT", "StuckJobs": "INT",
	"UserGpoAppliedTimeInSeconds": "FLOAT", "UserGpoDCDiscoveryInSeconds": "FLOAT",
	"CrashedPluginList": "STRING_LIST",
}

// library returns the remote actions every tenant has: the topics' data-collection
// and remediation actions plus #restart_device, which is not enabled for the API.
func library() []remoteAction {
	dc := func(id, name, desc, uuid string) remoteAction {
		outs, _ := fleet.DataActionOutputs(id)
		var outputs []output
		for _, o := range outs {
			typ := outputTypes[o]
			if typ == "" {
				typ = "STRING"
			}
			outputs = append(outputs, output{ID: o, Name: o, Type: typ, Description: o + " as collected on the device.", UsedByWindows: true})
		}
		return remoteAction{
			ID: id, UUID: uuid, Name: name, Description: desc, Origin: "NEXTHINK_LIBRARY",
			BuiltInContentVersion: "2.1.0.0", Purpose: []string{purposeDataCollection},
			Targeting: targeting{APIEnabled: true, ManualEnabled: true, WorkflowEnabled: true, ManualAllowMultipleDevices: true},
			ScriptInfo: scriptInfo{RunAs: "LOCAL_SYSTEM", TimeoutSeconds: 120, HasScriptWindows: true,
				Inputs: []input{}, Outputs: outputs},
		}
	}
	rem := func(id, name, desc, uuid string, runAs string, inputs ...input) remoteAction {
		if inputs == nil {
			inputs = []input{}
		}
		return remoteAction{
			ID: id, UUID: uuid, Name: name, Description: desc, Origin: "NEXTHINK_LIBRARY",
			BuiltInContentVersion: "2.0.3.0", Purpose: []string{purposeRemediation},
			Targeting: targeting{APIEnabled: true, ManualEnabled: true, WorkflowEnabled: true},
			ScriptInfo: scriptInfo{RunAs: runAs, TimeoutSeconds: 300, HasScriptWindows: true,
				Inputs: inputs, Outputs: []output{}},
		}
	}
	restart := rem("#restart_device", "Restart device", "Restarts the device after warning the employee.",
		"5f8d7a2e-3c41-4b8e-9f0a-6d2c1e7b9a10", "LOCAL_SYSTEM")
	restart.Targeting.APIEnabled = false
	return []remoteAction{
		dc("#get_outlook_online_windows", "Get Microsoft Outlook online", "Reports whether Outlook is in online mode.", "0c1e5a84-7d3b-4f2a-9b61-2e8f4c7a1d01"),
		dc("#get_outlook_plugin_crash_details_windows", "Get Microsoft Outlook plugin crash details", "Lists the Outlook add-ins that crashed recently.", "0c1e5a84-7d3b-4f2a-9b61-2e8f4c7a1d02"),
		dc("#get_onedrive_status", "Get OneDrive status", "Reports the state of the OneDrive client.", "0c1e5a84-7d3b-4f2a-9b61-2e8f4c7a1d03"),
		dc("#get_startup_impact_windows", "Get startup impact", "Counts the applications with a high startup impact.", "0c1e5a84-7d3b-4f2a-9b61-2e8f4c7a1d04"),
		dc("#get_gpo_startup_impact_windows", "Get GPO startup impact", "Measures the time group policies take at logon.", "0c1e5a84-7d3b-4f2a-9b61-2e8f4c7a1d05"),
		dc("#get_printer_status_windows", "Get printer status", "Reports the print spooler state and stuck jobs.", "0c1e5a84-7d3b-4f2a-9b61-2e8f4c7a1d06"),
		rem("#set_outlook_online", "Set Outlook online", "Switches Outlook back to online mode.", "7a3b9c1d-2e4f-4a6b-8c0d-1e2f3a4b5c01", "INTERACTIVE_USER"),
		rem("#set_outlook_plugins", "Set Outlook plugins", "Re-enables Outlook add-ins disabled after crashes.", "7a3b9c1d-2e4f-4a6b-8c0d-1e2f3a4b5c02", "INTERACTIVE_USER"),
		rem("#repair_office_365", "Repair Office 365", "Runs a quick repair and update of Microsoft 365 Apps.", "7a3b9c1d-2e4f-4a6b-8c0d-1e2f3a4b5c03", "LOCAL_SYSTEM"),
		rem("#repair_outlook_ost_problem", "Repair Outlook OST Problem", "Rebuilds the Outlook offline data file.", "7a3b9c1d-2e4f-4a6b-8c0d-1e2f3a4b5c04", "INTERACTIVE_USER"),
		rem("#repair_onedrive", "Repair OneDrive", "Restarts or reinstalls the OneDrive client.", "7a3b9c1d-2e4f-4a6b-8c0d-1e2f3a4b5c05", "INTERACTIVE_USER"),
		rem("#disk_cleanup", "Disk cleanup", "Removes temporary files and empties caches on the system drive.", "7a3b9c1d-2e4f-4a6b-8c0d-1e2f3a4b5c06", "LOCAL_SYSTEM"),
		rem("#disable_application_from_startup_menu", "Disable Application from Startup menu", "Disables the given applications at startup.", "7a3b9c1d-2e4f-4a6b-8c0d-1e2f3a4b5c07", "INTERACTIVE_USER",
			input{ID: "ApplicationNames", Name: "ApplicationNames", Description: "Comma-separated names of the applications to disable at startup.", UsedByWindows: true, Options: []string{}, AllowCustomValue: true, required: true}),
		rem("#update_group_policy_settings", "Update Group Policy settings", "Runs gpupdate /force.", "7a3b9c1d-2e4f-4a6b-8c0d-1e2f3a4b5c08", "LOCAL_SYSTEM"),
		rem("#restart_print_spooler", "Restart print spooler", "Restarts the print spooler service.", "7a3b9c1d-2e4f-4a6b-8c0d-1e2f3a4b5c09", "LOCAL_SYSTEM"),
		rem("#clear_print_queue", "Clear print queue", "Deletes the stuck print jobs.", "7a3b9c1d-2e4f-4a6b-8c0d-1e2f3a4b5c10", "LOCAL_SYSTEM"),
		restart,
	}
}

// purposeToken is the purpose as remote_action.executions.purpose spells it.
func purposeToken(a *remoteAction) string {
	return strings.ToLower(a.Purpose[0])
}
