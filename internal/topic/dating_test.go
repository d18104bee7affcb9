package topic

import (
	"reflect"
	"testing"
)

func TestDatings(t *testing.T) {
	const (
		out    = "remote_action.get_x.execution.outputs.Out"
		tm     = "remote_action.get_x.execution.time"
		status = "remote_action.get_x.execution.status"
	)
	tests := []struct {
		name    string
		headers []string
		want    map[string]Dating
		probs   int
	}{
		{"device fields dated by the listed last_seen",
			[]string{"device.name", "free_space", LastSeenField},
			map[string]Dating{"device.name": {Time: LastSeenField}, "free_space": {Time: LastSeenField}, LastSeenField: {Time: LastSeenField}}, 0},
		{"device fields without last_seen",
			[]string{"device.name"}, map[string]Dating{"device.name": {}}, 0},
		{"an output with its time and status; the execution's columns date nothing",
			[]string{"device.name", out, tm, status, "remote_action.get_x.execution.status_details"},
			map[string]Dating{"device.name": {}, out: {Collection: "#get_x", Time: tm, Status: status}}, 0},
		{"an output without its time", []string{out, status}, map[string]Dating{}, 1},
		{"outputs of one action without time or status: one problem",
			[]string{out, "remote_action.get_x.execution.outputs.Other"}, map[string]Dating{}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, probs := datings(tt.headers)
			if !reflect.DeepEqual(got, tt.want) || len(probs) != tt.probs {
				t.Errorf("got %+v %q, want %+v and %d problems", got, probs, tt.want, tt.probs)
			}
		})
	}
}
