package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// The batch forms of the webhooks worker's store functions: a backlog drains at
// the rate of PostgreSQL round trips, so a batch of webhooks costs a fixed number
// of statements and one commit, whatever its size.

// planEachCall runs a statement as an unnamed one, planned on every call for the
// table's size then. The statements of a storm's path that match a batch against a
// table the storm grows (webhook records, callbacks) use it: a plan the connection
// kept was made while the table was small, and its scan of every row (or of every
// pending callback) goes on, each batch costing more than the one before, until an
// ANALYZE replaces it; autovacuum's may come a minute later. Measured over one
// backlog: the dedupe check from 5 ms a batch to 0.4, the finish from 3.3 to 1.1.
const planEachCall = pgx.QueryExecModeExec

// recordedQuery finds which of the dedupe keys $1 have been dealt with.
const recordedQuery = `SELECT dedupe_key FROM webhook_deliveries
	WHERE dedupe_key = ANY($1) AND outcome NOT IN ('failed', 'invalid')`

// WebhooksDone is WebhookDone for several dedupe keys: the set of those dealt with.
func (db *DB) WebhooksDone(ctx context.Context, dedupeKeys []string) (map[string]bool, error) {
	rows, _ := db.pool.Query(ctx, recordedQuery, planEachCall, dedupeKeys)
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("webhooks done: %w", err)
	}
	out := make(map[string]bool, len(keys))
	for _, k := range keys {
		out[k] = true
	}
	return out, nil
}

// DevicesWithUsers is DeviceDetails by name for several names on one instance (""
// for every instance): for each name as asked (matched case-insensitively), the most recently seen
// device of that name and its users by latest activity (at most 20). Names the
// cache does not know are absent. Two queries, whatever the number of names.
func (db *DB) DevicesWithUsers(ctx context.Context, instance string, names []string) (map[string]DeviceDetail, error) {
	// One index probe per name (devices_lower_name), as DeviceDetails makes.
	rows, _ := db.pool.Query(ctx, `
		SELECT q.name AS asked, `+deviceColumns+`, `+noUser+`,
			coalesce(d.last_logon_user, '') AS last_logon_user, d.last_logon_time, d.fields
		FROM (SELECT DISTINCT n AS name FROM unnest($1::text[]) n) q
		CROSS JOIN LATERAL (
			SELECT * FROM devices d WHERE lower(d.name) = lower(q.name) AND ($2 = '' OR d.instance = $2)
			ORDER BY d.last_seen DESC NULLS LAST, d.instance LIMIT 1) d`, names, instance)
	type askedRow struct {
		Asked string `db:"asked"`
		CachedDevice
		LastLogonUser string         `db:"last_logon_user"`
		LastLogonTime *time.Time     `db:"last_logon_time"`
		Fields        map[string]any `db:"fields"`
	}
	found, err := pgx.CollectRows(rows, pgx.RowToStructByName[askedRow])
	if err != nil {
		return nil, fmt.Errorf("devices with users: %w", err)
	}
	out := make(map[string]DeviceDetail, len(found))
	if len(found) == 0 {
		return out, nil
	}
	uids, instances := make([]string, len(found)), make([]string, len(found))
	at := make(map[[2]string][]string, len(found)) // (instance, collector uid) -> names asked
	for i, f := range found {
		out[f.Asked] = DeviceDetail{CachedDevice: f.CachedDevice, LastLogonUser: f.LastLogonUser,
			LastLogonTime: f.LastLogonTime, Fields: withColumnFields(f.Fields, f.CachedDevice, f.LastLogonUser, f.LastLogonTime)}
		uids[i], instances[i] = f.CollectorUID, f.Instance
		k := [2]string{f.Instance, f.CollectorUID}
		at[k] = append(at[k], f.Asked)
	}
	rows, _ = db.pool.Query(ctx, `
		SELECT q.instance, q.uid, x.name, x.full_name, x.upn, x.last_activity, x.source
		FROM (SELECT DISTINCT * FROM unnest($1::text[], $2::text[]) AS q(uid, instance)) q
		CROSS JOIN LATERAL (
			SELECT coalesce(u.name, ud.user_key) AS name, coalesce(u.full_name, '') AS full_name, coalesce(u.upn, '') AS upn,
				ud.last_activity, ud.source
			FROM user_devices ud
			LEFT JOIN users u ON u.name_key = ud.user_key AND u.instance = ud.instance
			WHERE ud.collector_uid = q.uid AND ud.instance = q.instance
			ORDER BY ud.last_activity DESC LIMIT 20) x
		ORDER BY q.instance, q.uid, x.last_activity DESC`, uids, instances)
	defer rows.Close()
	for rows.Next() {
		var inst, uid string
		var u DeviceUser
		if err := rows.Scan(&inst, &uid, &u.Name, &u.FullName, &u.UPN, &u.LastActivity, &u.Source); err != nil {
			return nil, fmt.Errorf("devices with users: users: %w", err)
		}
		for _, name := range at[[2]string{inst, uid}] {
			d := out[name]
			d.Users = append(d.Users, u)
			out[name] = d
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("devices with users: users: %w", err)
	}
	for name, d := range out {
		if len(d.Users) > 0 {
			u := d.Users[0]
			d.LastActivity, d.ActivitySource, d.User = &u.LastActivity, u.Source, u.Name
			d.UserFullName, d.UserUPN = u.FullName, u.UPN
			out[name] = d
		}
	}
	return out, nil
}

// WebhookApply is one webhook of a batch: its record and what it does. A record
// with no effects (Effects zero: ignored or invalid) is recorded as it is.
type WebhookApply struct {
	Record  WebhookRecord
	Effects ProactiveEffects
}

// ApplyWebhooks is ApplyWebhook for a batch, in one transaction and in the batch's
// order: each webhook sees the events of those before it (a second alert of the
// same employee and monitor is suppressed by the first; a recovery closes an event
// opened earlier in the batch). The dedupe keys must differ. It fails as a whole
// (ErrRecordedMeanwhile when another transaction recorded one of its webhooks
// while it ran); the caller may then apply the webhooks one by one.
func (db *DB) ApplyWebhooks(ctx context.Context, batch []WebhookApply, render RenderDelivery) ([]Applied, error) {
	seen := make(map[string]bool, len(batch))
	for _, b := range batch {
		if seen[b.Record.DedupeKey] {
			return nil, fmt.Errorf("apply webhooks: dedupe key %q twice in one batch", b.Record.DedupeKey)
		}
		seen[b.Record.DedupeKey] = true
	}
	var out []Applied
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		var err error
		out, err = applyBatch(ctx, tx, batch, render)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("apply webhooks: %w", err)
	}
	return out, nil
}

func applyBatch(ctx context.Context, tx pgx.Tx, batch []WebhookApply, render RenderDelivery) ([]Applied, error) {
	out := make([]Applied, len(batch))
	// Lock every subject the batch opens an event for, at once and in one order
	// (see lockSubjects), and read the transaction's time, its events' created_at.
	var locks []string
	for _, b := range batch {
		for _, e := range b.Effects.Open {
			locks = append(locks, e.SubjectKey+"\x1f"+strings.ToLower(b.Record.Monitor))
		}
	}
	slices.Sort(locks)
	locks = slices.Compact(locks)
	var now time.Time
	if err := tx.QueryRow(ctx, `SELECT now(), count(pg_advisory_xact_lock(hashtextextended('dexbridge.proactive.' || current_schema() || '.' || k, 0)))
		FROM unnest($1::text[]) AS k`, locks).Scan(&now, new(int64)); err != nil {
		return nil, fmt.Errorf("lock subjects: %w", err)
	}
	claimed, err := unrecorded(ctx, tx, batch)
	if err != nil {
		return nil, err
	}
	told, err := suppressors(ctx, tx, batch, claimed)
	if err != nil {
		return nil, err
	}

	// Events are inserted in runs; a recovery first inserts those before it, so it
	// closes them too.
	var pending []eventRow
	flush := func() error {
		rows, err := insertEvents(ctx, tx, pending)
		if err != nil {
			return err
		}
		for k, r := range rows {
			a := &out[pending[k].item]
			switch r.Status {
			case ProactiveOpen:
				a.Opened = append(a.Opened, r)
			case ProactiveSuppressed:
				a.Suppressed = append(a.Suppressed, r)
			case ProactiveHealthy:
				a.Healthy = append(a.Healthy, r)
			default:
				a.Unresolved = append(a.Unresolved, r)
			}
		}
		pending = pending[:0]
		return nil
	}
	for i, b := range batch {
		if !claimed[i] {
			out[i].Duplicate = true
			continue
		}
		if !effective(b.Effects) {
			out[i].Outcome, out[i].Detail = b.Record.Outcome, b.Record.Detail
			continue
		}
		for _, e := range b.Effects.Open {
			r := eventRow{item: i, rec: b.Record, e: e, status: ProactiveOpen, detail: e.Detail}
			key := e.SubjectKey + "\x1f" + strings.ToLower(b.Record.Monitor)
			switch {
			case e.Hold != "":
				r.status = e.Hold
			case e.SuppressionWindow <= 0:
			case told.inBatch[key] != "":
				r.status, r.suppressedBy = ProactiveSuppressed, told.inBatch[key]
				r.detail = suppressedDetail(now, r.suppressedBy, e.SuppressionWindow)
			case told.stored[suppressKey{i, e.ID}].id != "":
				s := told.stored[suppressKey{i, e.ID}]
				r.status, r.suppressedBy = ProactiveSuppressed, s.id
				r.detail = suppressedDetail(s.at, s.id, e.SuppressionWindow)
			}
			if r.status == ProactiveOpen {
				told.inBatch[key] = e.ID
			}
			pending = append(pending, r)
		}
		if c := b.Effects.Close; c != nil {
			if err := flush(); err != nil {
				return nil, err
			}
			if out[i].Closed, err = closeEvents(ctx, tx, b.Record, *c); err != nil {
				return nil, err
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}

	// What needs no feed position comes first: the feed's counter row, taken next,
	// holds every other batch's transaction back until this one commits.
	for i, b := range batch {
		if claimed[i] && effective(b.Effects) {
			out[i].Outcome, out[i].Detail = outcome(out[i], b.Effects)
		}
	}
	if err := recordWebhooks(ctx, tx, batch, claimed, out); err != nil {
		return nil, err
	}
	targets, err := deliveryTargets(ctx, tx, batch, out)
	if err != nil {
		return nil, err
	}

	var feed []ProactiveEvent
	for i := range out {
		feed = append(feed, out[i].Opened...)
		feed = append(feed, out[i].Closed...)
	}
	if err := assignFeedBatch(ctx, tx, feed); err != nil {
		return nil, err
	}
	// The feed positions, in the batch's order, back into each webhook's events.
	k := 0
	for i := range out {
		for _, g := range [][]ProactiveEvent{out[i].Opened, out[i].Closed} {
			for j := range g {
				g[j].FeedSeq = feed[k].FeedSeq
				k++
			}
		}
	}
	if err := enqueueBatch(ctx, tx, targets, out, render); err != nil {
		return nil, err
	}
	return out, nil
}

// effective reports whether a webhook does anything beyond its record.
func effective(e ProactiveEffects) bool { return len(e.Open) > 0 || e.Close != nil }

func suppressedDetail(at time.Time, by string, window time.Duration) string {
	return fmt.Sprintf("already told at %s (event %s), within the %s suppression window", at.UTC().Format(time.RFC3339), by, window)
}

// ErrRecordedMeanwhile fails a batch one of whose webhooks another transaction
// recorded after unrecorded looked: the batch's effects are rolled back, and the
// caller's one-by-one fallback finds that webhook dealt with.
var ErrRecordedMeanwhile = errors.New("a webhook of the batch was recorded by another transaction meanwhile")

// unrecorded reports, for each webhook of the batch, whether it is still to be
// dealt with: no record, or one of a failed or invalid attempt. A batch records its
// webhooks only at the end (recordWebhooks), with their outcomes, in one write.
func unrecorded(ctx context.Context, tx pgx.Tx, batch []WebhookApply) ([]bool, error) {
	keys := make([]string, len(batch))
	for i, b := range batch {
		keys[i] = b.Record.DedupeKey
	}
	rows, _ := tx.Query(ctx, recordedQuery, planEachCall, keys)
	done, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("recorded webhooks: %w", err)
	}
	out := make([]bool, len(batch))
	for i, k := range keys {
		out[i] = !slices.Contains(done, k)
	}
	return out, nil
}

// recordWebhooks writes the record of each webhook the batch dealt with, with the
// outcome out gives an effective one: claimWebhook's insert, made once the outcome
// is known rather than updated after. A webhook another transaction recorded since
// unrecorded looked fails the batch (ErrRecordedMeanwhile).
func recordWebhooks(ctx context.Context, tx pgx.Tx, batch []WebhookApply, claimed []bool, out []Applied) error {
	var keys, ids, sources, deliveryIDs, outcomes, monitors, statuses, details []string
	var received []time.Time
	var deliveries []int32
	var payloads []*string
	for i, b := range batch {
		if !claimed[i] {
			continue
		}
		r := b.Record
		oc, det := r.Outcome, r.Detail
		if effective(b.Effects) {
			oc, det = out[i].Outcome, out[i].Detail
		}
		keys, ids, sources, deliveryIDs = append(keys, r.DedupeKey), append(ids, r.WebhookID), append(sources, r.Source), append(deliveryIDs, r.DeliveryID)
		received, outcomes, monitors, statuses = append(received, r.ReceivedAt), append(outcomes, oc), append(monitors, r.Monitor), append(statuses, r.AlertStatus)
		details, deliveries = append(details, det), append(deliveries, int32(max(r.Deliveries, 1)))
		var p *string
		if len(r.Payload) > 0 && (r.Outcome == WebhookInvalid || r.Outcome == WebhookFailed) {
			j := string(jsonb(r.Payload))
			p = &j
		}
		payloads = append(payloads, p)
	}
	if len(keys) == 0 {
		return nil
	}
	tag, err := tx.Exec(ctx, `
		INSERT INTO webhook_deliveries AS w (dedupe_key, webhook_id, source, delivery_id, received_at, outcome,
			monitor, alert_status, detail, deliveries, payload)
		SELECT k, id, src, nullif(dlv, ''), rcv, oc, nullif(mon, ''), nullif(st, ''), nullif(det, ''), n, p::jsonb
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], $7::text[], $8::text[],
			$9::text[], $10::int[], $11::text[]) AS q(k, id, src, dlv, rcv, oc, mon, st, det, n, p)
		ON CONFLICT (dedupe_key) DO UPDATE SET webhook_id = excluded.webhook_id, delivery_id = excluded.delivery_id,
			received_at = excluded.received_at, outcome = excluded.outcome, monitor = excluded.monitor,
			alert_status = excluded.alert_status, detail = excluded.detail, deliveries = excluded.deliveries,
			payload = excluded.payload, processed_at = now(), seq = nextval(pg_get_serial_sequence('webhook_deliveries', 'seq'))
		WHERE w.outcome IN ('failed', 'invalid')`,
		keys, ids, sources, deliveryIDs, received, outcomes, monitors, statuses, details, deliveries, payloads)
	if err != nil {
		return fmt.Errorf("record webhooks: %w", err)
	}
	if tag.RowsAffected() != int64(len(keys)) {
		return fmt.Errorf("record webhooks: %w", ErrRecordedMeanwhile)
	}
	return nil
}

type suppressKey struct {
	item  int
	event string
}

type suppressor struct {
	id string
	at time.Time
}

// told is who was told of what, for suppression: stored, the latest sent event
// within each new event's window; inBatch, the events this batch opens, by subject
// and monitor.
type told struct {
	stored  map[suppressKey]suppressor
	inBatch map[string]string
}

// suppressors finds, in one query, the latest event sent within its window to each
// subject and monitor the batch opens an event for.
func suppressors(ctx context.Context, tx pgx.Tx, batch []WebhookApply, claimed []bool) (told, error) {
	out := told{stored: map[suppressKey]suppressor{}, inBatch: map[string]string{}}
	var items []int32
	var ids, subjects, monitors []string
	var windows []int64
	for i, b := range batch {
		if !claimed[i] {
			continue
		}
		for _, e := range b.Effects.Open {
			if e.Hold != "" || e.SuppressionWindow <= 0 {
				continue
			}
			items, ids = append(items, int32(i)), append(ids, e.ID)
			subjects, monitors = append(subjects, e.SubjectKey), append(monitors, b.Record.Monitor)
			windows = append(windows, e.SuppressionWindow.Milliseconds())
		}
	}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := tx.Query(ctx, `
		SELECT q.item, q.id, p.id, p.created_at
		FROM unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::bigint[]) AS q(item, id, subject, monitor, window_ms)
		CROSS JOIN LATERAL (
			SELECT id, created_at FROM proactive_events
			WHERE subject_key = q.subject AND monitor_key = lower(q.monitor) AND status IN ('open', 'closed')
			  AND created_at > now() - q.window_ms * interval '1 millisecond'
			ORDER BY created_at DESC LIMIT 1) p`, items, ids, subjects, monitors, windows)
	if err != nil {
		return told{}, fmt.Errorf("suppression check: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var item int32
		var id string
		var s suppressor
		if err := rows.Scan(&item, &id, &s.id, &s.at); err != nil {
			return told{}, fmt.Errorf("suppression check: %w", err)
		}
		out.stored[suppressKey{int(item), id}] = s
	}
	if err := rows.Err(); err != nil {
		return told{}, fmt.Errorf("suppression check: %w", err)
	}
	return out, nil
}

// eventRow is an event to insert, its status decided.
type eventRow struct {
	item                 int
	rec                  WebhookRecord
	e                    NewProactiveEvent
	status, suppressedBy string
	detail               string
}

// insertEvents inserts events in one statement and returns them as stored, in order.
func insertEvents(ctx context.Context, tx pgx.Tx, evs []eventRow) ([]ProactiveEvent, error) {
	if len(evs) == 0 {
		return nil, nil
	}
	cols := make([][]any, 22)
	for c := range cols {
		cols[c] = make([]any, len(evs))
	}
	for i, r := range evs {
		e := r.e
		for c, v := range []any{e.ID, r.status, r.rec.Source, r.rec.WebhookID, r.rec.DedupeKey, r.rec.Monitor, e.Topic, e.SubjectKey,
			e.UserName, e.UserUPN, e.DeviceName, e.CollectorUID, e.Instance, e.Platform,
			jsonText(e.Alert), jsonText(e.Diagnosis), jsonText(e.Remediations), e.Message, r.suppressedBy, e.Assessment, r.detail,
			jsonText(e.Texts)} {
			cols[c][i] = v
		}
	}
	args := make([]any, len(cols))
	for c := range cols {
		args[c] = texts(cols[c])
	}
	rows, _ := tx.Query(ctx, `
		INSERT INTO proactive_events (id, status, source, webhook_id, dedupe_key, monitor, monitor_key, topic, subject_key,
			user_name, user_upn, device_name, collector_uid, instance, platform, alert, diagnosis, remediations, message, suppressed_by,
			assessment, detail, texts)
		SELECT id, st, src, wid, k, mon, lower(mon), nullif(top, ''), subj, nullif(un, ''), nullif(upn, ''), nullif(dev, ''),
			nullif(cuid, ''), nullif(inst, ''), nullif(plat, ''), al::jsonb, diag::jsonb, rem::jsonb, msg, nullif(sup, ''),
			nullif(ass, ''), nullif(det, ''), tx::jsonb
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
			$10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[],
			$19::text[], $20::text[], $21::text[], $22::text[])
			WITH ORDINALITY AS q(id, st, src, wid, k, mon, top, subj, un, upn, dev, cuid, inst, plat, al, diag, rem, msg, sup, ass, det, tx, n)
		ORDER BY n
		RETURNING `+proactiveColumns, args...)
	got, err := pgx.CollectRows(rows, pgx.RowToStructByName[ProactiveEvent])
	if err != nil {
		return nil, fmt.Errorf("insert proactive events: %w", err)
	}
	byID := make(map[string]ProactiveEvent, len(got))
	for _, g := range got {
		byID[g.ID] = g
	}
	out := make([]ProactiveEvent, len(evs))
	for i, r := range evs {
		out[i] = byID[r.e.ID]
	}
	return out, nil
}

// texts turns a column of strings and nils (jsonText's NULL) into a text array.
func texts(col []any) []*string {
	out := make([]*string, len(col))
	for i, v := range col {
		if s, ok := v.(string); ok {
			out[i] = &s
		}
	}
	return out
}

// assignFeedBatch is assignFeed for a whole batch, in its order, in two statements.
func assignFeedBatch(ctx context.Context, tx pgx.Tx, evs []ProactiveEvent) error {
	if len(evs) == 0 {
		return nil
	}
	var last int64
	if err := tx.QueryRow(ctx, `UPDATE proactive_feed SET seq = seq + $1 WHERE id = 1 RETURNING seq`, len(evs)).Scan(&last); err != nil {
		return fmt.Errorf("feed position: %w", err)
	}
	// An event opened and closed in the same batch keeps its later position, as it
	// would one webhook at a time.
	at := make(map[string]int, len(evs))
	var ids []string
	var seqs []int64
	for i := range evs {
		seq := last - int64(len(evs)) + 1 + int64(i)
		evs[i].FeedSeq = &seq
		if k, ok := at[evs[i].ID]; ok {
			seqs[k] = seq
			continue
		}
		at[evs[i].ID] = len(ids)
		ids, seqs = append(ids, evs[i].ID), append(seqs, seq)
	}
	if _, err := tx.Exec(ctx, `UPDATE proactive_events p SET feed_seq = q.seq, updated_at = now()
		FROM unnest($1::text[], $2::bigint[]) AS q(id, seq) WHERE p.id = q.id`, ids, seqs); err != nil {
		return fmt.Errorf("feed position: %w", err)
	}
	return nil
}

// deliveryTarget is a callback delivery to enqueue: the change (the j-th event
// item opened, or closed), the subscription it goes to, and its id.
type deliveryTarget struct {
	item, j int
	closed  bool
	sub     subscriber
	id      int64
}

// deliveryTargets are the callback deliveries of every event the batch opened or
// closed, as enqueueDeliveries finds them: the subscriptions each matches in one
// query, their ids in one.
func deliveryTargets(ctx context.Context, tx pgx.Tx, batch []WebhookApply, out []Applied) ([]deliveryTarget, error) {
	var changes []deliveryTarget
	var monitors, topics, instances []string
	for i := range out {
		if !batch[i].Effects.Callback {
			continue
		}
		for closed, g := range [][]ProactiveEvent{out[i].Opened, out[i].Closed} {
			for j, e := range g {
				changes = append(changes, deliveryTarget{item: i, j: j, closed: closed == 1})
				monitors, topics, instances = append(monitors, e.Monitor), append(topics, e.Topic), append(instances, e.Instance)
			}
		}
	}
	if len(changes) == 0 {
		return nil, nil
	}
	// The filters of matchingSubscriptions, for every change at once.
	rows, err := tx.Query(ctx, `
		SELECT q.n, s.id, s.locale
		FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS q(monitor, topic, instance, n)
		JOIN proactive_subscriptions s ON s.url <> ''
		  AND (cardinality(s.monitors) = 0 OR EXISTS (SELECT 1 FROM unnest(s.monitors) m WHERE lower(m) = lower(q.monitor)))
		  AND (cardinality(s.topics) = 0 OR q.topic = ANY(s.topics))
		  AND (cardinality(s.instances) = 0 OR q.instance = ANY(s.instances))
		ORDER BY q.n, s.id`, monitors, topics, instances)
	if err != nil {
		return nil, fmt.Errorf("matching subscriptions: %w", err)
	}
	var targets []deliveryTarget
	for rows.Next() {
		var n int64
		var s subscriber
		if err := rows.Scan(&n, &s.id, &s.locale); err != nil {
			rows.Close()
			return nil, fmt.Errorf("matching subscriptions: %w", err)
		}
		t := changes[n-1]
		t.sub = s
		targets = append(targets, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("matching subscriptions: %w", err)
	}
	if len(targets) == 0 {
		return nil, nil
	}
	rows, _ = tx.Query(ctx, `SELECT nextval(pg_get_serial_sequence('proactive_deliveries', 'id')) FROM generate_series(1, $1)`, len(targets))
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("enqueue deliveries: %w", err)
	}
	slices.Sort(ids)
	for i := range targets {
		targets[i].id = ids[i]
	}
	return targets, nil
}

// enqueueBatch inserts the deliveries deliveryTargets found, in one statement, each
// rendered from its event as the batch left it (its feed position set).
func enqueueBatch(ctx context.Context, tx pgx.Tx, targets []deliveryTarget, out []Applied, render RenderDelivery) error {
	if len(targets) == 0 {
		return nil
	}
	n := len(targets)
	ids, events, kinds, bodies, subs, locales := make([]int64, n), make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n)
	for i, t := range targets {
		e, kind := out[t.item].Opened, "opened"
		if t.closed {
			e, kind = out[t.item].Closed, "closed"
		}
		body, err := render(e[t.j], kind, t.id, t.sub.locale)
		if err != nil {
			return fmt.Errorf("enqueue delivery: render: %w", err)
		}
		ids[i], events[i], kinds[i], bodies[i], subs[i], locales[i] = t.id, e[t.j].ID, kind, string(body), t.sub.id, t.sub.locale
		out[t.item].Deliveries++
	}
	if _, err := tx.Exec(ctx, `INSERT INTO proactive_deliveries (id, event_id, kind, body, subscription_id, locale)
		SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])`,
		ids, events, kinds, bodies, subs, locales); err != nil {
		return fmt.Errorf("enqueue deliveries: %w", err)
	}
	return nil
}

// FinishedDelivery is a claimed delivery's attempt and its next state, as
// FinishProactiveDelivery takes them.
type FinishedDelivery struct {
	Delivery ProactiveDelivery
	Attempt  DeliveryAttempt
	State    string
	RetryIn  time.Duration
}

// FinishProactiveDeliveries is FinishProactiveDelivery for several attempts, in
// one transaction of four statements: ok[i] is false when the i-th claim was lost.
// What the attempts say of a subscription is applied in their order: its failure
// count is the failures after its last success in the batch (added to its count
// when none succeeded), and a dead delivery pauses it.
func (db *DB) FinishProactiveDeliveries(ctx context.Context, fs []FinishedDelivery) (ok []bool, err error) {
	n := len(fs)
	ids, attempts := make([]int64, n), make([]int32, n)
	started, durations, statuses, errs := make([]time.Time, n), make([]int64, n), make([]*int32, n), make([]*string, n)
	states, retries := make([]string, n), make([]int64, n)
	for i, f := range fs {
		ids[i], attempts[i] = f.Delivery.ID, int32(f.Delivery.Attempts)
		started[i], durations[i] = f.Attempt.StartedAt, f.Attempt.Duration.Milliseconds()
		if f.Attempt.Status > 0 {
			s := int32(f.Attempt.Status)
			statuses[i] = &s
		}
		if f.Attempt.Error != "" {
			e := f.Attempt.Error
			errs[i] = &e
		}
		states[i], retries[i] = f.State, f.RetryIn.Milliseconds()
	}
	err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO proactive_delivery_attempts (delivery_id, attempt, started_at, duration_ms, status, error)
			SELECT * FROM unnest($1::bigint[], $2::int[], $3::timestamptz[], $4::bigint[], $5::int[], $6::text[])
			ON CONFLICT DO NOTHING`, ids, attempts, started, durations, statuses, errs); err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, `
			UPDATE proactive_deliveries d SET state = q.state, lease_until = NULL, updated_at = now(),
				next_attempt_at = CASE WHEN q.state = 'pending' THEN now() + q.retry_ms * interval '1 millisecond' ELSE d.next_attempt_at END,
				last_status = q.status, last_error = q.error,
				delivered_at = CASE WHEN q.state = 'delivered' THEN now() END
			FROM unnest($1::bigint[], $2::int[], $3::text[], $4::bigint[], $5::int[], $6::text[]) AS q(id, attempt, state, retry_ms, status, error)
			WHERE d.id = q.id AND d.attempts = q.attempt AND d.state = 'pending'
			RETURNING d.id`, planEachCall, ids, attempts, states, retries, statuses, errs)
		done, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		won := make(map[int64]bool, len(done))
		for _, id := range done {
			won[id] = true
		}
		ok = make([]bool, n)
		type subState struct {
			reset             bool // a success: the count starts again from the failures after it
			failures          int32
			succeeded, failed bool
			dead              bool
			lastError         string
		}
		subs := map[string]*subState{}
		var order []string
		for i, f := range fs {
			if ok[i] = won[f.Delivery.ID]; !ok[i] {
				continue
			}
			s := subs[f.Delivery.SubscriptionID]
			if s == nil {
				s = &subState{}
				subs[f.Delivery.SubscriptionID] = s
				order = append(order, f.Delivery.SubscriptionID)
			}
			if f.State == DeliveryDelivered {
				s.reset, s.failures, s.succeeded = true, 0, true
				continue
			}
			s.failures++
			s.failed, s.lastError = true, f.Attempt.Error
			s.dead = s.dead || f.State == DeliveryDead
		}
		if len(order) == 0 {
			return nil
		}
		slices.Sort(order) // rows locked in one order
		sids, resets, failures, succeeded, failed, dead, lastErrors := make([]string, len(order)), make([]bool, len(order)),
			make([]int32, len(order)), make([]bool, len(order)), make([]bool, len(order)), make([]bool, len(order)), make([]string, len(order))
		for i, id := range order {
			s := subs[id]
			sids[i], resets[i], failures[i], succeeded[i], failed[i], dead[i], lastErrors[i] = id, s.reset, s.failures, s.succeeded, s.failed, s.dead, s.lastError
		}
		_, err = tx.Exec(ctx, `
			UPDATE proactive_subscriptions s SET
				failures = CASE WHEN q.reset THEN q.failures ELSE s.failures + q.failures END,
				last_success_at = CASE WHEN q.succeeded THEN now() ELSE s.last_success_at END,
				last_error = CASE WHEN q.failed THEN q.last_error ELSE s.last_error END,
				last_failure_at = CASE WHEN q.failed THEN now() ELSE s.last_failure_at END,
				state = CASE WHEN q.dead THEN 'paused' ELSE s.state END,
				paused_at = CASE WHEN q.dead AND s.state = 'active' THEN now() ELSE s.paused_at END,
				updated_at = now()
			FROM unnest($1::text[], $2::bool[], $3::int[], $4::bool[], $5::bool[], $6::bool[], $7::text[])
				AS q(id, reset, failures, succeeded, failed, dead, last_error)
			WHERE s.id = q.id`, sids, resets, failures, succeeded, failed, dead, lastErrors)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("finish deliveries: %w", err)
	}
	return ok, nil
}
