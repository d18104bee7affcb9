package topic

import (
	"fmt"
	"strings"
	"time"
)

// DefaultMaxAge is how old a topic's data may be before a diagnosis calls it stale,
// when the topic says nothing (max_age): Nexthink's scheduled data collections run
// about daily, so a device in use has data younger than this.
const DefaultMaxAge = 24 * time.Hour

// LastSeenField is the device field that dates a device's own data: its inventory
// fields and what is computed from its events were reported by the time Nexthink
// last heard from it.
const LastSeenField = "device.last_seen"

// Dating says where the time of one column of a query's answer comes from.
type Dating struct {
	// Collection is the data-collection remote action ("#id") whose last execution
	// gave the column (an output), "" for the device's own data.
	Collection string
	// Time is the column holding the time: remote_action.<id>.execution.time for an
	// output, device.last_seen for the device's data ("" when the query does not list
	// it, and the device's last_seen from elsewhere dates it).
	Time string
	// Status is, for an output, the column holding its execution's status: the output
	// is from that execution only when it succeeded.
	Status string
}

// datings derives the Dating of each column of a query with headers. The columns
// that describe an execution (status, status_details, time) date nothing and are
// left out. It returns, as problems, one per remote action, the outputs whose time or
// status the query does not list: without them their values cannot be dated.
func datings(headers []string) (map[string]Dating, []string) {
	listed := make(map[string]bool, len(headers))
	for _, h := range headers {
		listed[h] = true
	}
	out := make(map[string]Dating, len(headers))
	undated := map[string][]string{} // by remote action: its outputs listed without time or status
	var order []string
	for _, h := range headers {
		id, output, ok := remoteActionField(h)
		switch {
		case !ok:
			d := Dating{}
			if listed[LastSeenField] {
				d.Time = LastSeenField
			}
			out[h] = d
		case output != "":
			prefix := "remote_action." + strings.TrimPrefix(id, "#") + ".execution."
			d := Dating{Collection: id, Time: prefix + "time", Status: prefix + "status"}
			if !listed[d.Time] || !listed[d.Status] {
				if _, seen := undated[id]; !seen {
					order = append(order, id)
				}
				undated[id] = append(undated[id], output)
				continue
			}
			out[h] = d
		}
	}
	probs := make([]string, 0, len(order))
	for _, id := range order {
		prefix := "remote_action." + strings.TrimPrefix(id, "#") + ".execution."
		var missing []string
		for _, f := range []string{prefix + "time", prefix + "status"} {
			if !listed[f] {
				missing = append(missing, f)
			}
		}
		probs = append(probs, fmt.Sprintf("lists outputs of %s (%s) without %s: list it too, so that a diagnosis can tell when each value was collected and whether the last collection succeeded",
			id, strings.Join(undated[id], ", "), strings.Join(missing, " and ")))
	}
	return out, probs
}
