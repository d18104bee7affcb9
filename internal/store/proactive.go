package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// The states of a proactive event.
const (
	ProactiveOpen       = "open"
	ProactiveClosed     = "closed"
	ProactiveSuppressed = "suppressed" // the employee was told of this monitor within the window
	ProactiveUnresolved = "unresolved" // nobody to tell: the device or user is unknown, or the device has no user
	ProactiveHealthy    = "healthy"    // the diagnosis found nothing wrong: recorded, not sent
)

// ProactiveEvent is a proactive event as stored.
type ProactiveEvent struct {
	ID           string     `db:"id"`
	FeedSeq      *int64     `db:"feed_seq"`
	Status       string     `db:"status"`
	Source       string     `db:"source"`
	WebhookID    string     `db:"webhook_id"`
	DedupeKey    string     `db:"dedupe_key"`
	Monitor      string     `db:"monitor"`
	Topic        string     `db:"topic"`
	SubjectKey   string     `db:"subject_key"`
	UserName     string     `db:"user_name"`
	UserUPN      string     `db:"user_upn"`
	DeviceName   string     `db:"device_name"`
	CollectorUID string     `db:"collector_uid"`
	Instance     string     `db:"instance"`
	Platform     string     `db:"platform"`
	Alert        []byte     `db:"alert"`
	Diagnosis    []byte     `db:"diagnosis"`
	Remediations []byte     `db:"remediations"`
	Message      string     `db:"message"`
	CloseMessage string     `db:"close_message"`
	Texts        []byte     `db:"texts"`       // JSON: locale to events.ProactiveTexts, without close_message
	CloseTexts   []byte     `db:"close_texts"` // JSON: locale to recovery message
	Assessment   string     `db:"assessment"`
	Detail       string     `db:"detail"`
	SuppressedBy string     `db:"suppressed_by"`
	ClosedBy     string     `db:"closed_by"`
	CreatedAt    time.Time  `db:"created_at"`
	UpdatedAt    time.Time  `db:"updated_at"`
	ClosedAt     *time.Time `db:"closed_at"`
	AckedAt      *time.Time `db:"acked_at"`
	AckedBy      string     `db:"acked_by"`
}

const proactiveColumns = `id, feed_seq, status, source, webhook_id, dedupe_key, monitor, coalesce(topic, '') AS topic, subject_key,
	coalesce(user_name, '') AS user_name, coalesce(user_upn, '') AS user_upn, coalesce(device_name, '') AS device_name,
	coalesce(collector_uid, '') AS collector_uid, coalesce(instance, '') AS instance, coalesce(platform, '') AS platform,
	alert, diagnosis, remediations, message, coalesce(close_message, '') AS close_message, texts, close_texts,
	coalesce(assessment, '') AS assessment, coalesce(detail, '') AS detail, coalesce(suppressed_by, '') AS suppressed_by, coalesce(closed_by, '') AS closed_by,
	created_at, updated_at, closed_at, acked_at, coalesce(acked_by, '') AS acked_by`

// NewProactiveEvent is an event a webhook asks to open for one employee and device.
type NewProactiveEvent struct {
	ID, Topic                          string
	SubjectKey                         string // user:<name> or device:<name>
	UserName, UserUPN                  string
	DeviceName, CollectorUID, Instance string
	Platform                           string
	Alert, Diagnosis, Remediations     []byte // JSON
	Message                            string
	Texts                              []byte // JSON: the texts by locale (Texts of ProactiveEvent)
	Assessment                         string // what the event found out
	// Hold, when set (ProactiveUnresolved or ProactiveHealthy), records the event with
	// that status, never sent; Detail says why.
	Hold   string
	Detail string
	// SuppressionWindow: an event of the same subject and monitor opened within it
	// suppresses this one.
	SuppressionWindow time.Duration
}

// CloseProactive closes the open events of a monitor on a device (or, without a
// device, of a user): their status and their alert's become closed, with the
// recovery time and message.
type CloseProactive struct {
	DeviceName, UserName string
	CloseMessage         string
	CloseMessages        map[string]string // the recovery message by locale
	RecoveryTime         time.Time
}

// ProactiveEffects are what a processed webhook does.
type ProactiveEffects struct {
	Open  []NewProactiveEvent
	Close *CloseProactive
	// Callback enqueues a delivery of every event opened or closed to each
	// subscription whose filters take it.
	Callback bool
}

// RenderDelivery builds the body of a callback delivery of an event change, in the
// subscription's locale.
type RenderDelivery func(e ProactiveEvent, kind string, deliveryID int64, locale string) ([]byte, error)

// Applied is what ApplyWebhook did.
type Applied struct {
	Duplicate  bool
	Opened     []ProactiveEvent
	Closed     []ProactiveEvent
	Suppressed []ProactiveEvent
	Unresolved []ProactiveEvent
	Healthy    []ProactiveEvent
	// Deliveries are the callback deliveries enqueued, one per event change and
	// subscription.
	Deliveries int
	// Outcome is what became of the webhook (WebhookOpened, ...), Detail why.
	Outcome, Detail string
}

// ApplyWebhook records a processed webhook and its effects in one transaction: the
// dedupe record first (a duplicate stops there and changes nothing), then the events
// opened, suppressed, held or closed, their feed positions, their callback
// deliveries, and last the record's outcome.
func (db *DB) ApplyWebhook(ctx context.Context, rec WebhookRecord, eff ProactiveEffects, render RenderDelivery) (Applied, error) {
	var out Applied
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		out = Applied{}
		claimed, err := claimWebhook(ctx, tx, rec)
		if err != nil || !claimed {
			out.Duplicate = !claimed
			return err
		}
		if err := lockSubjects(ctx, tx, rec.Monitor, eff.Open); err != nil {
			return err
		}
		for _, e := range eff.Open {
			row, err := openEvent(ctx, tx, rec, e)
			if err != nil {
				return err
			}
			switch row.Status {
			case ProactiveOpen:
				out.Opened = append(out.Opened, row)
			case ProactiveSuppressed:
				out.Suppressed = append(out.Suppressed, row)
			case ProactiveHealthy:
				out.Healthy = append(out.Healthy, row)
			default:
				out.Unresolved = append(out.Unresolved, row)
			}
		}
		if eff.Close != nil {
			if out.Closed, err = closeEvents(ctx, tx, rec, *eff.Close); err != nil {
				return err
			}
		}
		if err := assignFeed(ctx, tx, out.Opened, out.Closed); err != nil {
			return err
		}
		if eff.Callback {
			for _, kind := range []struct {
				name string
				evs  []ProactiveEvent
			}{{"opened", out.Opened}, {"closed", out.Closed}} {
				for _, e := range kind.evs {
					n, err := enqueueDeliveries(ctx, tx, e, kind.name, render)
					if err != nil {
						return err
					}
					out.Deliveries += n
				}
			}
		}
		out.Outcome, out.Detail = outcome(out, eff)
		_, err = tx.Exec(ctx, `UPDATE webhook_deliveries SET outcome = $2, detail = nullif($3, '') WHERE dedupe_key = $1`,
			rec.DedupeKey, out.Outcome, out.Detail)
		return err
	})
	if err != nil {
		return Applied{}, fmt.Errorf("apply webhook: %w", err)
	}
	return out, nil
}

// outcome is what became of a webhook, from what it did, and why: a recovery closed
// events or found none open; else the most telling of its events (one was sent, or
// suppressed, or found healthy, or nobody could be told).
func outcome(a Applied, eff ProactiveEffects) (string, string) {
	if eff.Close != nil {
		if len(a.Closed) == 0 {
			who := eff.Close.DeviceName
			if who == "" {
				who = "user " + eff.Close.UserName
			}
			return WebhookNothingToClose, "no open event of this monitor for " + who
		}
		return WebhookClosed, fmt.Sprintf("closed %d event(s)", len(a.Closed))
	}
	var why []string
	for _, g := range [][]ProactiveEvent{a.Opened, a.Suppressed, a.Healthy, a.Unresolved} {
		for _, e := range g {
			who := e.UserName
			if who == "" {
				who = "nobody"
			}
			if e.DeviceName != "" {
				who += " on " + e.DeviceName
			}
			why = append(why, e.Status+" for "+who+": "+e.Detail)
		}
	}
	detail := strings.Join(why, "; ")
	switch {
	case len(a.Opened) > 0:
		return WebhookOpened, detail
	case len(a.Suppressed) > 0:
		return WebhookSuppressed, detail
	case len(a.Healthy) > 0:
		return WebhookHealthyNotSent, detail
	}
	return WebhookUnresolved, detail
}

// lockSubjects serialises the webhooks that concern the same employee and monitor,
// so two replicas cannot both decide nobody was told yet. Locks are taken in one
// order, so they cannot deadlock.
func lockSubjects(ctx context.Context, tx pgx.Tx, monitor string, evs []NewProactiveEvent) error {
	var keys []string
	for _, e := range evs {
		keys = append(keys, e.SubjectKey+"\x1f"+strings.ToLower(monitor))
	}
	slices.Sort(keys)
	for _, k := range slices.Compact(keys) {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('dexbridge.proactive.' || current_schema() || '.' || $1, 0))`, k); err != nil {
			return fmt.Errorf("lock subject: %w", err)
		}
	}
	return nil
}

func openEvent(ctx context.Context, tx pgx.Tx, rec WebhookRecord, e NewProactiveEvent) (ProactiveEvent, error) {
	status, suppressedBy, detail := ProactiveOpen, "", e.Detail
	if e.Hold != "" {
		status = e.Hold
	} else if e.SuppressionWindow > 0 {
		var at time.Time
		err := tx.QueryRow(ctx, `
			SELECT id, created_at FROM proactive_events
			WHERE subject_key = $1 AND monitor_key = lower($2) AND status IN ('open', 'closed')
			  AND created_at > now() - $3 * interval '1 millisecond'
			ORDER BY created_at DESC LIMIT 1`, e.SubjectKey, rec.Monitor, e.SuppressionWindow.Milliseconds()).Scan(&suppressedBy, &at)
		switch {
		case err == nil:
			status = ProactiveSuppressed
			detail = fmt.Sprintf("already told at %s (event %s), within the %s suppression window", at.UTC().Format(time.RFC3339),
				suppressedBy, e.SuppressionWindow)
		case !errors.Is(err, pgx.ErrNoRows):
			return ProactiveEvent{}, fmt.Errorf("suppression check: %w", err)
		}
	}
	rows, _ := tx.Query(ctx, `
		INSERT INTO proactive_events (id, status, source, webhook_id, dedupe_key, monitor, monitor_key, topic, subject_key,
			user_name, user_upn, device_name, collector_uid, instance, platform, alert, diagnosis, remediations, message, suppressed_by,
			assessment, detail, texts)
		VALUES ($1, $2, $3, $4, $5, $6, lower($6), nullif($7, ''), $8, nullif($9, ''), nullif($10, ''), nullif($11, ''),
			nullif($12, ''), nullif($13, ''), nullif($14, ''), $15::jsonb, $16::jsonb, $17::jsonb, $18, nullif($19, ''),
			nullif($20, ''), nullif($21, ''), $22::jsonb)
		RETURNING `+proactiveColumns,
		e.ID, status, rec.Source, rec.WebhookID, rec.DedupeKey, rec.Monitor, e.Topic, e.SubjectKey,
		e.UserName, e.UserUPN, e.DeviceName, e.CollectorUID, e.Instance, e.Platform,
		jsonText(e.Alert), jsonText(e.Diagnosis), jsonText(e.Remediations), e.Message, suppressedBy, e.Assessment, detail, jsonText(e.Texts))
	row, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[ProactiveEvent])
	if err != nil {
		return ProactiveEvent{}, fmt.Errorf("insert proactive event: %w", err)
	}
	return row, nil
}

// jsonText passes JSON as text (nil as NULL), so the ::jsonb cast reads it.
func jsonText(b []byte) any {
	if b == nil {
		return nil
	}
	return string(jsonb(b))
}

// jsonMap passes a map as JSON text (empty as NULL).
func jsonMap(m map[string]string) any {
	if len(m) == 0 {
		return nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil // a map of strings always marshals
	}
	return string(b)
}

func closeEvents(ctx context.Context, tx pgx.Tx, rec WebhookRecord, c CloseProactive) ([]ProactiveEvent, error) {
	if c.DeviceName == "" && c.UserName == "" {
		return nil, nil
	}
	rows, _ := tx.Query(ctx, `
		UPDATE proactive_events SET status = 'closed', closed_at = now(), updated_at = now(),
			close_message = nullif($5, ''), closed_by = $6, close_texts = $8::jsonb,
			alert = alert || jsonb_build_object('status', 'closed', 'recovery_time', $7::text)
		WHERE id IN (
			SELECT id FROM proactive_events
			WHERE source = $1 AND monitor_key = lower($2) AND status = 'open'
			  AND CASE WHEN $3 <> '' THEN lower(device_name) = lower($3) ELSE lower(user_name) = lower($4) END
			ORDER BY id FOR UPDATE)
		RETURNING `+proactiveColumns,
		rec.Source, rec.Monitor, c.DeviceName, c.UserName, c.CloseMessage, rec.DedupeKey, c.RecoveryTime.UTC().Format(time.RFC3339Nano),
		jsonMap(c.CloseMessages))
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[ProactiveEvent])
	if err != nil {
		return nil, fmt.Errorf("close proactive events: %w", err)
	}
	return out, nil
}

// assignFeed gives the opened and closed events the next feed positions. It runs last
// in the transaction: the feed row stays locked until commit, so positions are
// handed out in commit order.
func assignFeed(ctx context.Context, tx pgx.Tx, groups ...[]ProactiveEvent) error {
	n := 0
	for _, g := range groups {
		n += len(g)
	}
	if n == 0 {
		return nil
	}
	var last int64
	if err := tx.QueryRow(ctx, `UPDATE proactive_feed SET seq = seq + $1 WHERE id = 1 RETURNING seq`, n).Scan(&last); err != nil {
		return fmt.Errorf("feed position: %w", err)
	}
	next := last - int64(n) + 1
	for _, g := range groups {
		for i := range g {
			seq := next
			next++
			if _, err := tx.Exec(ctx, `UPDATE proactive_events SET feed_seq = $2, updated_at = now() WHERE id = $1`, g[i].ID, seq); err != nil {
				return fmt.Errorf("feed position: %w", err)
			}
			g[i].FeedSeq = &seq
		}
	}
	return nil
}

// enqueueDeliveries enqueues a delivery of an event change to each subscription
// whose filters take the event, rendered in its locale.
func enqueueDeliveries(ctx context.Context, tx pgx.Tx, e ProactiveEvent, kind string, render RenderDelivery) (int, error) {
	subs, err := matchingSubscriptions(ctx, tx, e)
	if err != nil {
		return 0, err
	}
	for _, s := range subs {
		var id int64
		if err := tx.QueryRow(ctx, `SELECT nextval(pg_get_serial_sequence('proactive_deliveries', 'id'))`).Scan(&id); err != nil {
			return 0, fmt.Errorf("enqueue delivery: %w", err)
		}
		body, err := render(e, kind, id, s.locale)
		if err != nil {
			return 0, fmt.Errorf("enqueue delivery: render: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO proactive_deliveries (id, event_id, kind, body, subscription_id, locale)
			VALUES ($1, $2, $3, $4, $5, $6)`, id, e.ID, kind, string(body), s.id, s.locale); err != nil {
			return 0, fmt.Errorf("enqueue delivery: %w", err)
		}
	}
	return len(subs), nil
}

// ProactiveFeed returns the events whose feed position is after after, in order.
func (db *DB) ProactiveFeed(ctx context.Context, after int64, limit int) ([]ProactiveEvent, error) {
	rows, _ := db.pool.Query(ctx, `SELECT `+proactiveColumns+` FROM proactive_events
		WHERE feed_seq > $1 ORDER BY feed_seq LIMIT $2`, after, limit)
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[ProactiveEvent])
	if err != nil {
		return nil, fmt.Errorf("proactive feed: %w", err)
	}
	return out, nil
}

// ProactiveFeedHead is the last feed position handed out.
func (db *DB) ProactiveFeedHead(ctx context.Context) (int64, error) {
	var seq int64
	if err := db.pool.QueryRow(ctx, `SELECT seq FROM proactive_feed WHERE id = 1`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("proactive feed head: %w", err)
	}
	return seq, nil
}

// AckProactiveEvent records that a chatbot took the event in hand (the first ack
// counts; later ones change nothing) and cancels its callback deliveries still
// pending. Suppressed and unresolved events are not found: they were never sent.
func (db *DB) AckProactiveEvent(ctx context.Context, id, by string) (ProactiveEvent, error) {
	var out ProactiveEvent
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `
			UPDATE proactive_events SET acked_at = coalesce(acked_at, now()), acked_by = coalesce(acked_by, $2)
			WHERE id = $1 AND status IN ('open', 'closed')
			RETURNING `+proactiveColumns, id, by)
		var err error
		if out, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[ProactiveEvent]); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE proactive_deliveries SET state = 'cancelled', lease_until = NULL, updated_at = now()
			WHERE event_id = $1 AND state = 'pending'`, id)
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return ProactiveEvent{}, ErrNotFound
	}
	if err != nil {
		return ProactiveEvent{}, fmt.Errorf("ack proactive event: %w", err)
	}
	return out, nil
}

// ProactiveEvents lists the events a webhook source recorded (every source when
// source is empty), in creation order: for operators and tests.
func (db *DB) ProactiveEvents(ctx context.Context, source string) ([]ProactiveEvent, error) {
	rows, _ := db.pool.Query(ctx, `SELECT `+proactiveColumns+` FROM proactive_events
		WHERE $1 = '' OR source = $1 ORDER BY created_at, id`, source)
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[ProactiveEvent])
	if err != nil {
		return nil, fmt.Errorf("proactive events: %w", err)
	}
	return out, nil
}

// The states of a callback delivery.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryDead      = "dead" // every attempt failed
	DeliveryCancelled = "cancelled"
)

// ProactiveDelivery is a callback delivery of an event change to one subscription.
type ProactiveDelivery struct {
	ID             int64  `db:"id"`
	EventID        string `db:"event_id"`
	SubscriptionID string `db:"subscription_id"`
	Kind           string `db:"kind"`
	Body           string `db:"body"`
	Locale         string `db:"locale"`
	State          string `db:"state"`
	Attempts       int    `db:"attempts"` // attempts started, this claim's included
	// AttemptFloor is Attempts when its subscription was last resumed: the attempts
	// that count against the limit are those above it.
	AttemptFloor  int        `db:"attempt_floor"`
	NextAttemptAt time.Time  `db:"next_attempt_at"`
	LastStatus    *int       `db:"last_status"`
	LastError     string     `db:"last_error"`
	CreatedAt     time.Time  `db:"created_at"`
	DeliveredAt   *time.Time `db:"delivered_at"`
}

const deliveryColumns = `d.id, d.event_id, d.subscription_id, d.kind, d.body, d.locale, d.state, d.attempts, d.attempt_floor,
	d.next_attempt_at, d.last_status, coalesce(d.last_error, '') AS last_error, d.created_at, d.delivered_at`

// ClaimedDelivery is a delivery claimed for an attempt, with where it goes.
type ClaimedDelivery struct {
	ProactiveDelivery
	URL    string `db:"url"`
	Origin string `db:"origin"`
	// Secret is the subscription's whsec_ secret; empty for the configured callback,
	// whose secret is in the configuration.
	Secret string `db:"secret"`
}

// ClaimProactiveDeliveries takes up to limit due deliveries of active subscriptions
// for this replica: each is leased for lease (another replica takes it over if this
// one dies) and its attempt count, the claim's fencing token, goes up by one.
// SKIP LOCKED keeps two replicas from claiming the same delivery.
func (db *DB) ClaimProactiveDeliveries(ctx context.Context, limit int, lease time.Duration) ([]ClaimedDelivery, error) {
	rows, _ := db.pool.Query(ctx, `
		WITH c AS (
			SELECT p.id FROM proactive_deliveries p JOIN proactive_subscriptions s ON s.id = p.subscription_id
			WHERE p.state = 'pending' AND p.next_attempt_at <= now() AND (p.lease_until IS NULL OR p.lease_until <= now())
			  AND s.state = 'active' AND s.url <> ''
			ORDER BY p.next_attempt_at, p.id LIMIT $1 FOR UPDATE OF p SKIP LOCKED),
		d AS (
			UPDATE proactive_deliveries d SET attempts = d.attempts + 1, updated_at = now(),
				lease_until = now() + $2 * interval '1 millisecond'
			FROM c WHERE d.id = c.id
			RETURNING d.*)
		SELECT `+deliveryColumns+`, s.url, s.origin, coalesce(s.secret, '') AS secret
		FROM d JOIN proactive_subscriptions s ON s.id = d.subscription_id
		ORDER BY d.id`, limit, lease.Milliseconds())
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[ClaimedDelivery])
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	return out, nil
}

// DeliveryAttempt is the outcome of one callback attempt.
type DeliveryAttempt struct {
	StartedAt time.Time
	Duration  time.Duration
	Status    int    // HTTP status, 0 when there was no answer
	Error     string // why it failed
}

// FinishProactiveDelivery records an attempt of a claimed delivery and its next
// state: delivered, dead, or pending again after retryIn; and what it says of its
// subscription: a success clears its failure count, a failure adds to it, and a dead
// delivery pauses it. ok is false when the claim was lost (the lease expired and
// another replica took the delivery over, or a chatbot's ack cancelled it): the
// attempt is still recorded.
func (db *DB) FinishProactiveDelivery(ctx context.Context, d ProactiveDelivery, a DeliveryAttempt, state string, retryIn time.Duration) (ok bool, err error) {
	err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		var status any
		if a.Status > 0 {
			status = a.Status
		}
		if _, err := tx.Exec(ctx, `INSERT INTO proactive_delivery_attempts (delivery_id, attempt, started_at, duration_ms, status, error)
			VALUES ($1, $2, $3, $4, $5, nullif($6, '')) ON CONFLICT DO NOTHING`,
			d.ID, d.Attempts, a.StartedAt, a.Duration.Milliseconds(), status, a.Error); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `
			UPDATE proactive_deliveries SET state = $3, lease_until = NULL, updated_at = now(),
				next_attempt_at = CASE WHEN $3 = 'pending' THEN now() + $4 * interval '1 millisecond' ELSE next_attempt_at END,
				last_status = $5, last_error = nullif($6, ''),
				delivered_at = CASE WHEN $3 = 'delivered' THEN now() END
			WHERE id = $1 AND attempts = $2 AND state = 'pending'`,
			d.ID, d.Attempts, state, retryIn.Milliseconds(), status, a.Error)
		if err != nil {
			return err
		}
		if ok = tag.RowsAffected() == 1; !ok {
			return nil
		}
		if state == DeliveryDelivered {
			_, err = tx.Exec(ctx, `UPDATE proactive_subscriptions SET failures = 0, last_success_at = now(), updated_at = now()
				WHERE id = $1`, d.SubscriptionID)
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE proactive_subscriptions SET failures = failures + 1, last_error = $2, last_failure_at = now(),
				state = CASE WHEN $3 THEN 'paused' ELSE state END,
				paused_at = CASE WHEN $3 AND state = 'active' THEN now() ELSE paused_at END, updated_at = now()
			WHERE id = $1`, d.SubscriptionID, a.Error, state == DeliveryDead)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("finish delivery %d: %w", d.ID, err)
	}
	return ok, nil
}

// NextProactiveDeliveryDue is when the next pending delivery is due (nil: none).
func (db *DB) NextProactiveDeliveryDue(ctx context.Context) (*time.Time, error) {
	var t *time.Time
	err := db.pool.QueryRow(ctx, `SELECT min(greatest(p.next_attempt_at, coalesce(p.lease_until, p.next_attempt_at)))
		FROM proactive_deliveries p JOIN proactive_subscriptions s ON s.id = p.subscription_id
		WHERE p.state = 'pending' AND s.state = 'active'`).Scan(&t)
	if err != nil {
		return nil, fmt.Errorf("next delivery due: %w", err)
	}
	return t, nil
}

// ProactiveDeliveries lists the callback deliveries of an event (of every event when
// eventID is empty), oldest first.
func (db *DB) ProactiveDeliveries(ctx context.Context, eventID string) ([]ProactiveDelivery, error) {
	rows, _ := db.pool.Query(ctx, `SELECT `+deliveryColumns+` FROM proactive_deliveries d
		WHERE $1 = '' OR d.event_id = $1 ORDER BY d.id`, eventID)
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[ProactiveDelivery])
	if err != nil {
		return nil, fmt.Errorf("proactive deliveries: %w", err)
	}
	return out, nil
}

// ProactiveAttempt is one recorded callback attempt.
type ProactiveAttempt struct {
	DeliveryID int64     `db:"delivery_id"`
	Attempt    int       `db:"attempt"`
	StartedAt  time.Time `db:"started_at"`
	DurationMS int       `db:"duration_ms"`
	Status     *int      `db:"status"`
	Error      string    `db:"error"`
}

// ProactiveAttempts lists a delivery's attempts in order.
func (db *DB) ProactiveAttempts(ctx context.Context, deliveryID int64) ([]ProactiveAttempt, error) {
	rows, _ := db.pool.Query(ctx, `SELECT delivery_id, attempt, started_at, duration_ms, status, coalesce(error, '') AS error
		FROM proactive_delivery_attempts WHERE delivery_id = $1 ORDER BY attempt`, deliveryID)
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[ProactiveAttempt])
	if err != nil {
		return nil, fmt.Errorf("proactive attempts: %w", err)
	}
	return out, nil
}
