package topics

import (
	"context"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/natsrpc"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/wrapper"
)

// The topics worker's peers, over NATS: the devices service resolves devices (cache
// first, then live, as identification does) and the remoteactions service runs data
// collection.

// natsDevices resolves devices through the devices service.
type natsDevices struct {
	rpc  *natsrpc.Client
	subj events.Subjects
}

// Resolve asks for the cached device with its fields (req.devices.get); when the
// cache does not have it, identifies it by name or collector UID, which asks the
// instances live (req.devices.identify).
func (d natsDevices) Resolve(ctx context.Context, device string) (wrapper.Device, error) {
	if events.CheckDevice(device) != nil {
		// A saved query's parameter is any value; one no device can have names none.
		return wrapper.Device{}, problem.New(problem.NotFound, "no device %q: the cache does not have it and no Nexthink instance knows it", device)
	}
	var got events.DevicesGetReply
	err := d.rpc.Call(ctx, d.subj.Of(events.DevicesGet), events.DevicesGetRequest{Header: events.NewHeader(events.TypeDevicesGetRequest), Device: device}, &got, natsrpc.Idempotent)
	if err == nil {
		dd := got.Device
		out := wrapper.Device{Name: dd.Name, CollectorUID: dd.CollectorUID, UID: dd.UID, Instance: dd.Instance, Platform: dd.Platform, Fields: dd.Fields}
		if got.DataAsOf != nil {
			out.CachedAt = *got.DataAsOf
		}
		if out.Fields == nil {
			out.Fields = map[string]any{}
		}
		return out, nil
	}
	if problem.CodeOf(err) != problem.NotFound {
		return wrapper.Device{}, err
	}
	key := events.KeyDeviceName
	if events.IsCollectorUID(device) {
		key = events.KeyCollectorUID
	}
	var found events.DevicesIdentifyReply
	req := events.DevicesIdentifyRequest{Header: events.NewHeader(events.TypeDevicesIdentifyRequest), Key: key, Value: device}
	if err := d.rpc.Call(ctx, d.subj.Of(events.DevicesIdentify), req, &found, natsrpc.Idempotent); err != nil {
		return wrapper.Device{}, err
	}
	if len(found.Devices) == 0 {
		return wrapper.Device{}, problem.New(problem.NotFound, "no device %q: the cache does not have it and no Nexthink instance knows it", device)
	}
	// A live answer carries no cached fields: the queries go to the device's instance.
	f := found.Devices[0]
	return wrapper.Device{Name: f.Name, CollectorUID: f.CollectorUID, Instance: f.Instance, Platform: f.Platform}, nil
}

// natsActions is the remoteactions service's contract.
type natsActions struct {
	rpc  *natsrpc.Client
	subj events.Subjects
}

func (a natsActions) Trigger(ctx context.Context, req events.ActionsTriggerRequest) (events.Execution, error) {
	var reply events.ExecutionReply
	if err := a.rpc.Call(ctx, a.subj.Of(events.ActionsTrigger), req, &reply); err != nil {
		return events.Execution{}, err
	}
	return reply.Execution, nil
}

func (a natsActions) Get(ctx context.Context, id string) (events.Execution, error) {
	var reply events.ExecutionReply
	req := events.ActionsGetRequest{Header: events.NewHeader(events.TypeActionsGetRequest), ID: id}
	if err := a.rpc.Call(ctx, a.subj.Of(events.ActionsGet), req, &reply, natsrpc.Idempotent); err != nil {
		return events.Execution{}, err
	}
	return reply.Execution, nil
}
