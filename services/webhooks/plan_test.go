package webhooks_test

import (
	"fmt"
	"testing"

	"github.com/dexbridge/dexbridge/internal/webhookmap"
	"github.com/dexbridge/dexbridge/services/webhooks"
)

func TestTargets(t *testing.T) {
	dev := &webhooks.Device{Name: "PC-1", CollectorUID: "c1", Instance: "eu"}
	users := []webhooks.Employee{{Name: "amy", UPN: "amy@x"}, {Name: "bob"}, {Name: "cal"}}
	emp := &webhooks.Employee{Name: "dan", UPN: "dan@x"}
	devs := []webhooks.Device{{Name: "PC-DAN-NEW"}, {Name: "PC-DAN-OLD"}}
	tests := []struct {
		name       string
		a          webhookmap.Alert
		max        int
		dev        *webhooks.Device
		devUsers   []webhooks.Employee
		emp        *webhooks.Employee
		empDevices []webhooks.Device
		want       string
	}{
		{"device alone: most recent user", webhookmap.Alert{Device: "PC-1"}, 1, dev, users, nil, nil, "[amy/amy@x@PC-1/c1]"},
		{"device alone: two most recent", webhookmap.Alert{Device: "PC-1"}, 2, dev, users, nil, nil, "[amy/amy@x@PC-1/c1 bob/@PC-1/c1]"},
		{"device nobody used", webhookmap.Alert{Device: "PC-1"}, 1, dev, nil, nil, nil, "[-@PC-1/c1]"},
		{"unknown device", webhookmap.Alert{Device: "PC-X"}, 1, nil, nil, nil, nil, "[-@PC-X/]"},
		{"named user on the device, UPN from the device's users", webhookmap.Alert{Device: "PC-1", User: "BOB"}, 1, dev, users, nil, nil, "[bob/@PC-1/c1]"},
		{"named user matched by UPN", webhookmap.Alert{Device: "PC-1", User: "amy@x"}, 1, dev, users, nil, nil, "[amy/amy@x@PC-1/c1]"},
		{"named user not among the device's users", webhookmap.Alert{Device: "PC-1", User: "zed@x"}, 1, dev, users, nil, nil, "[zed@x/zed@x@PC-1/c1]"},
		{"user alone: latest device", webhookmap.Alert{User: "dan"}, 1, nil, nil, emp, devs, "[dan/dan@x@PC-DAN-NEW/]"},
		{"unknown user alone", webhookmap.Alert{User: "eve"}, 1, nil, nil, nil, nil, "[eve/@-]"},
	}
	for _, tt := range tests {
		got := webhooks.Targets(tt.a, tt.max, tt.dev, tt.devUsers, tt.emp, tt.empDevices)
		var desc []string
		for _, g := range got {
			s := "-"
			if g.Employee != nil {
				s = g.Employee.Name + "/" + g.Employee.UPN
			}
			if g.Device != nil {
				s += "@" + g.Device.Name + "/" + g.Device.CollectorUID
			} else {
				s += "@-"
			}
			desc = append(desc, s)
		}
		if fmt.Sprint(desc) != tt.want {
			t.Errorf("%s: got %v, want %s", tt.name, desc, tt.want)
		}
	}
}
