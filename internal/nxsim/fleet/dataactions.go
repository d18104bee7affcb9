package fleet

import (
	"strconv"
	"strings"
)

// dataAction is a data-collection remote action whose last execution each Windows
// device exposes as remote_action.<id>.execution.outputs.<Output>.
type dataAction struct {
	id      string // NQL id without '#'
	outputs []string
}

// dataActions are the data-collection remote actions the topics run, by index.
var dataActions = [nDataActions]dataAction{
	{"get_outlook_online_windows", []string{"IsOnline"}},
	{"get_outlook_plugin_crash_details_windows", []string{"CrashedPluginList"}},
	{"get_onedrive_status", []string{"OneDriveStatus"}},
	{"get_startup_impact_windows", []string{"HighImpactCount", "HighImpactApplications"}},
	{"get_gpo_startup_impact_windows", []string{"UserGpoAppliedTimeInSeconds", "UserGpoDCDiscoveryInSeconds"}},
	{"get_printer_status_windows", []string{"SpoolerStatus", "StuckJobs", "DefaultPrinter"}},
}

// nDataActions is len(dataActions).
const nDataActions = 6

// Data-action indices.
const (
	daOutlookOnline = iota
	daOutlookPlugins
	daOneDrive
	daStartup
	daGPO
	daPrinter
)

// DataActionOutputs returns the output names of data-collection action id (with or
// without '#'), and false when id is not one.
func DataActionOutputs(id string) ([]string, bool) {
	k := dataActionIndex(id)
	if k < 0 {
		return nil, false
	}
	return dataActions[k].outputs, true
}

func dataActionIndex(id string) int {
	id = strings.TrimPrefix(id, "#")
	for k, a := range dataActions {
		if a.id == id {
			return k
		}
	}
	return -1
}

// outputValue is the value output out of data action k reports for device d, nil when
// the action does not run on d (macOS) or has no such output.
func outputValue(d *device, k int, out string) any {
	if d.mac {
		return nil
	}
	switch k {
	case daOutlookOnline:
		if out == "IsOnline" {
			if d.outlookOff {
				return "No"
			}
			return "Yes"
		}
	case daOutlookPlugins:
		if out == "CrashedPluginList" {
			return "[" + strconv.Quote(crashedPlugins[d.plugin]) + "]"
		}
	case daOneDrive:
		if out == "OneDriveStatus" {
			return oneDriveStatuses[d.oneDrive]
		}
	case daStartup:
		apps := startupProfiles[d.startup]
		switch out {
		case "HighImpactCount":
			if apps == "" {
				return int64(0)
			}
			return int64(strings.Count(apps, ",") + 1)
		case "HighImpactApplications":
			return apps
		}
	case daGPO:
		switch out {
		case "UserGpoAppliedTimeInSeconds":
			return float64(d.gpoApplied) / 10
		case "UserGpoDCDiscoveryInSeconds":
			return float64(d.gpoDC) / 10
		}
	case daPrinter:
		switch out {
		case "SpoolerStatus":
			if d.spoolerStop {
				return "Stopped"
			}
			return "Running"
		case "StuckJobs":
			return int64(d.stuckJobs)
		case "DefaultPrinter":
			return printers[d.printer]
		}
	}
	return nil
}

// outputsOf returns all outputs of data action k for d.
func outputsOf(d *device, k int) map[string]any {
	m := make(map[string]any, len(dataActions[k].outputs))
	for _, o := range dataActions[k].outputs {
		m[o] = outputValue(d, k, o)
	}
	return m
}
