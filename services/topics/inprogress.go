package topics

import (
	"context"
	"maps"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/store"
	storewire "github.com/dexbridge/dexbridge/internal/wire" // this package has a func wire
)

// ActiveExecutions reads the executions still running on a device (store.DB).
type ActiveExecutions interface {
	ActiveExecutions(ctx context.Context, instance, collectorUID string) ([]store.Execution, error)
}

// markInProgress marks each remediation of diag whose remote action, with the same
// params, is still active on the device: the chatbot should say it is under way
// rather than offer it again (running it would answer with that execution). A
// remediation keeps ready: its params are known, and force may run it again. The
// store is read directly, in one query; when it cannot be read the diagnosis goes
// unmarked (a trigger still finds the active execution).
func (d *diagnoser) markInProgress(ctx context.Context, diag *events.Diagnosis) {
	if d.executions == nil || !suggestsAction(diag.Remediations) {
		return
	}
	active, err := d.executions.ActiveExecutions(ctx, diag.Device.Instance, diag.Device.CollectorUID)
	if err != nil {
		d.log.WarnContext(ctx, "active executions unavailable: remediations not marked in progress", "device", diag.Device.Name,
			"instance", diag.Device.Instance, "err", err)
		return
	}
	for i := range diag.Remediations {
		s := &diag.Remediations[i]
		for _, e := range active { // oldest first: the one a trigger would answer with
			if s.RemoteAction == "" || e.RemoteAction != s.RemoteAction || !sameParams(e.Params, s.Params) {
				continue
			}
			s.InProgress = &events.RemedyInProgress{ExecutionID: e.ID, Status: storewire.Execution(e).Status, CreatedAt: e.CreatedAt.UTC()}
			break
		}
	}
}

func suggestsAction(rs []events.SuggestedRemedy) bool {
	for _, s := range rs {
		if s.RemoteAction != "" {
			return true
		}
	}
	return false
}

// sameParams compares params, nil being none.
func sameParams(a, b map[string]string) bool {
	return len(a) == len(b) && maps.Equal(a, b)
}
