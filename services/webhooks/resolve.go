package webhooks

import (
	"context"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/store"
)

// Employee is someone a proactive event can be addressed to.
type Employee struct {
	Name     string
	UPN      string
	FullName string
}

// Device is a device an alert concerns.
type Device struct {
	Name         string
	CollectorUID string
	Instance     string
	Platform     string
}

// Resolver finds who and what an alert concerns, on the instance the alert's source
// is bound to ("" when it is bound to none: any instance).
type Resolver interface {
	// UsersOfDevice returns the device of that name and its recent users, most
	// recently active first; a nil device when it is unknown.
	UsersOfDevice(ctx context.Context, instance, device string) (*Device, []Employee, error)
	// DevicesOfUser returns the user (by user name, DOMAIN\user, or UPN) and their
	// devices, most recently active first; a nil employee when the user is unknown.
	DevicesOfUser(ctx context.Context, instance, user string) (*Employee, []Device, error)
}

// BatchResolver is a Resolver that also looks up several devices at once.
type BatchResolver interface {
	Resolver
	// UsersOfDevices is UsersOfDevice for each name of devices, on one instance: by
	// the name as given; a name the cache does not know is absent.
	UsersOfDevices(ctx context.Context, instance string, devices []string) (map[string]ResolvedDevice, error)
}

// ResolvedDevice is a device and its recent users, most recently active first.
type ResolvedDevice struct {
	Device Device
	Users  []Employee
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

// UsersOfDevice implements Resolver: the most recently seen device of that name on
// instance and its users by latest activity.
func (c CacheResolver) UsersOfDevice(ctx context.Context, instance, device string) (*Device, []Employee, error) {
	found, err := c.DB.DeviceDetails(ctx, store.ByDeviceName, device, instance)
	if err != nil || len(found) == 0 {
		return nil, nil, err
	}
	d := found[0]
	out := &Device{Name: d.Name, CollectorUID: d.CollectorUID, Instance: d.Instance, Platform: d.Platform}
	users := make([]Employee, 0, len(d.Users))
	for _, u := range d.Users {
		users = append(users, Employee{Name: u.Name, UPN: u.UPN, FullName: u.FullName})
	}
	return out, users, nil
}

// UsersOfDevices implements BatchResolver: UsersOfDevice for each name, in two
// queries.
func (c CacheResolver) UsersOfDevices(ctx context.Context, instance string, devices []string) (map[string]ResolvedDevice, error) {
	found, err := c.DB.DevicesWithUsers(ctx, instance, devices)
	if err != nil {
		return nil, err
	}
	out := make(map[string]ResolvedDevice, len(found))
	for name, d := range found {
		r := ResolvedDevice{Device: Device{Name: d.Name, CollectorUID: d.CollectorUID, Instance: d.Instance, Platform: d.Platform},
			Users: make([]Employee, 0, len(d.Users))}
		for _, u := range d.Users {
			r.Users = append(r.Users, Employee{Name: u.Name, UPN: u.UPN, FullName: u.FullName})
		}
		out[name] = r
	}
	return out, nil
}

// DevicesOfUser implements Resolver: user is matched as identification matches a
// user name (events.UserMatches: as given, then DOMAIN\user without its domain, or
// user@domain as a UPN), on instance. Of several users matched, the most recently
// active is the employee, and only their devices are theirs.
func (c CacheResolver) DevicesOfUser(ctx context.Context, instance, user string) (*Employee, []Device, error) {
	var matches []store.UserMatch
	for _, m := range events.UserMatches(events.KeyUsername, user) {
		key := store.ByUserName
		if m.Key == events.KeyUPN {
			key = store.ByUPN
		}
		matches = append(matches, store.UserMatch{Key: key, Value: m.Value, MatchedBy: m.MatchedBy})
	}
	found, err := c.DB.DevicesOfUser(ctx, matches, instance, 10)
	if err != nil || len(found) == 0 {
		return nil, nil, err
	}
	first := found[0]
	emp := &Employee{Name: first.User, UPN: first.UserUPN, FullName: first.UserFullName}
	devs := make([]Device, 0, len(found))
	for _, d := range found {
		if d.Instance != first.Instance || d.User != first.User {
			continue
		}
		devs = append(devs, Device{Name: d.Name, CollectorUID: d.CollectorUID, Instance: d.Instance, Platform: d.Platform})
	}
	return emp, devs, nil
}
