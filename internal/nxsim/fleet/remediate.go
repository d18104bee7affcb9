package fleet

import "strings"

// remediate applies the effect of a successful remediation to d and returns the data
// action whose outputs change (so its last execution is refreshed), -1 for none.
func remediate(d *device, actionID string, _ map[string]string) (int, bool) {
	switch strings.TrimPrefix(actionID, "#") {
	case "set_outlook_online":
		d.outlookOff = false
		return daOutlookOnline, true
	case "set_outlook_plugins":
		d.plugin = 0
		return daOutlookPlugins, true
	case "repair_office_365":
		if !d.mac {
			d.office = officeRepaired
		}
	case "repair_onedrive":
		d.oneDrive = 0
		return daOneDrive, true
	case "disk_cleanup":
		// nxsim models free space as the device's current value: every performance
		// event (including the last 24 hours) reports the new value, so the next
		// diagnosis averages above the threshold.
		d.freeMB = max(d.freeMB, 25_000+d.freeMB)
	case "disable_application_from_startup_menu":
		d.startup = 0
		return daStartup, true
	case "update_group_policy_settings":
		d.gpoApplied, d.gpoDC = 11, 4
		return daGPO, true
	case "restart_print_spooler":
		d.spoolerStop = false
		return daPrinter, true
	case "clear_print_queue":
		d.stuckJobs = 0
		return daPrinter, true
	}
	return -1, false
}
