package webhooks

import (
	"context"
	"strings"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/store"
)

// Employee is someone a proactive event can be addressed to.
type Employee struct {
	Name string
	UPN  string
}

// Device is a device an alert concerns.
type Device struct {
	Name         string
	CollectorUID string
	Instance     string
	Platform     string
}

// Resolver finds who and what an alert concerns.
type Resolver interface {
	// UsersOfDevice returns the device of that name and its recent users, most
	// recently active first; a nil device when it is unknown.
	UsersOfDevice(ctx context.Context, device string) (*Device, []Employee, error)
	// DevicesOfUser returns the user (by name or UPN) and their devices, most recently
	// active first; a nil employee when the user is unknown.
	DevicesOfUser(ctx context.Context, user string) (*Employee, []Device, error)
}

// Diagnoser runs a topic's diagnosis on a device before the event is recorded, so the
// chatbot opens the conversation already knowing what is wrong, and the employee is
// offered only what can fix it. Optional: without one, no device is checked.
type Diagnoser interface {
	Diagnose(ctx context.Context, topic string, device Device) (*events.Diagnosis, error)
}

// CacheResolver resolves through the PostgreSQL cache that discovery fills.
type CacheResolver struct {
	DB *store.DB
}

// UsersOfDevice implements Resolver: the most recently seen device of that name (on
// any instance) and its users by latest activity.
func (c CacheResolver) UsersOfDevice(ctx context.Context, device string) (*Device, []Employee, error) {
	found, err := c.DB.DeviceDetails(ctx, store.ByDeviceName, device)
	if err != nil || len(found) == 0 {
		return nil, nil, err
	}
	d := found[0]
	out := &Device{Name: d.Name, CollectorUID: d.CollectorUID, Instance: d.Instance, Platform: d.Platform}
	users := make([]Employee, 0, len(d.Users))
	for _, u := range d.Users {
		users = append(users, Employee{Name: u.Name, UPN: u.UPN})
	}
	return out, users, nil
}

// DevicesOfUser implements Resolver: a value with "@" is a UPN, else a user name.
func (c CacheResolver) DevicesOfUser(ctx context.Context, user string) (*Employee, []Device, error) {
	key := store.ByUserName
	if strings.Contains(user, "@") {
		key = store.ByUPN
	}
	found, err := c.DB.DevicesOfUser(ctx, key, user, 10)
	if err != nil || len(found) == 0 {
		return nil, nil, err
	}
	emp := &Employee{Name: found[0].User}
	if key == store.ByUPN {
		emp.UPN = user
	}
	devs := make([]Device, 0, len(found))
	for _, d := range found {
		devs = append(devs, Device{Name: d.Name, CollectorUID: d.CollectorUID, Instance: d.Instance, Platform: d.Platform})
	}
	return emp, devs, nil
}
