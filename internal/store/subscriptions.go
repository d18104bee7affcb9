package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The states and origins of a proactive subscription.
const (
	SubscriptionActive = "active"
	SubscriptionPaused = "paused" // a delivery ran out of attempts; nothing is sent until it is resumed

	SubscriptionFromAPI    = "api"
	SubscriptionFromConfig = "config"

	// ConfigSubscriptionID is the subscription of the callback configured in the
	// environment (PROACTIVE_CALLBACK_URL).
	ConfigSubscriptionID = "sub_config"
)

// ErrTooManySubscriptions is returned when creating a subscription would pass the limit.
var ErrTooManySubscriptions = errors.New("too many subscriptions")

// Subscription is a chatbot's subscription to proactive events. Secret is only
// read by the dispatcher (SubscriptionSecret); listings leave it empty.
type Subscription struct {
	ID            string     `db:"id"`
	Origin        string     `db:"origin"`
	URL           string     `db:"url"`
	Monitors      []string   `db:"monitors"`
	Topics        []string   `db:"topics"`
	Instances     []string   `db:"instances"`
	Locale        string     `db:"locale"`
	State         string     `db:"state"`
	Failures      int        `db:"failures"`
	LastError     string     `db:"last_error"`
	LastFailureAt *time.Time `db:"last_failure_at"`
	LastSuccessAt *time.Time `db:"last_success_at"`
	PausedAt      *time.Time `db:"paused_at"`
	CreatedBy     string     `db:"created_by"`
	CreatedAt     time.Time  `db:"created_at"`
	UpdatedAt     time.Time  `db:"updated_at"`
	// Pending is how many deliveries wait for it: due, retrying, or held while it
	// is paused.
	Pending int `db:"pending"`
}

const subscriptionColumns = `s.id, s.origin, s.url, s.monitors, s.topics, s.instances, s.locale, s.state, s.failures,
	coalesce(s.last_error, '') AS last_error, s.last_failure_at, s.last_success_at, s.paused_at,
	coalesce(s.created_by, '') AS created_by, s.created_at, s.updated_at,
	(SELECT count(*) FROM proactive_deliveries d WHERE d.subscription_id = s.id AND d.state IN ('pending', 'dead'))::int AS pending`

// NewSubscription is a subscription to create; Secret is its whsec_ secret.
type NewSubscription struct {
	ID, URL, Secret, Locale     string
	Monitors, Topics, Instances []string
	CreatedBy                   string
	// Max is how many API subscriptions may exist, this one included (0: no limit).
	Max int
}

// CreateSubscription stores a subscription made through the API, unless Max would
// be passed (ErrTooManySubscriptions).
func (db *DB) CreateSubscription(ctx context.Context, n NewSubscription) (Subscription, error) {
	var out Subscription
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		// Serialise creations so two cannot both pass the limit.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('dexbridge.subscriptions.' || current_schema(), 0))`); err != nil {
			return err
		}
		if n.Max > 0 {
			var count int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM proactive_subscriptions WHERE origin = 'api'`).Scan(&count); err != nil {
				return err
			}
			if count >= n.Max {
				return ErrTooManySubscriptions
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO proactive_subscriptions (id, origin, url, secret, monitors, topics, instances, locale, created_by)
			VALUES ($1, 'api', $2, $3, $4, $5, $6, $7, nullif($8, ''))`,
			n.ID, n.URL, n.Secret, nonNil(n.Monitors), nonNil(n.Topics), nonNil(n.Instances), n.Locale, n.CreatedBy); err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, `SELECT `+subscriptionColumns+` FROM proactive_subscriptions s WHERE s.id = $1`, n.ID)
		var err error
		out, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Subscription])
		return err
	})
	if errors.Is(err, ErrTooManySubscriptions) {
		return Subscription{}, err
	}
	if err != nil {
		return Subscription{}, fmt.Errorf("create subscription: %w", err)
	}
	return out, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Subscriptions lists every subscription, oldest first.
func (db *DB) Subscriptions(ctx context.Context) ([]Subscription, error) {
	rows, _ := db.pool.Query(ctx, `SELECT `+subscriptionColumns+` FROM proactive_subscriptions s ORDER BY s.created_at, s.id`)
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[Subscription])
	if err != nil {
		return nil, fmt.Errorf("subscriptions: %w", err)
	}
	return out, nil
}

// GetSubscription returns a subscription or ErrNotFound.
func (db *DB) GetSubscription(ctx context.Context, id string) (Subscription, error) {
	rows, _ := db.pool.Query(ctx, `SELECT `+subscriptionColumns+` FROM proactive_subscriptions s WHERE s.id = $1`, id)
	out, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Subscription])
	if errors.Is(err, pgx.ErrNoRows) {
		return Subscription{}, ErrNotFound
	}
	if err != nil {
		return Subscription{}, fmt.Errorf("subscription %s: %w", id, err)
	}
	return out, nil
}

// DeleteSubscription removes a subscription and its deliveries (ErrNotFound when
// there is none).
func (db *DB) DeleteSubscription(ctx context.Context, id string) error {
	tag, err := db.pool.Exec(ctx, `DELETE FROM proactive_subscriptions WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("delete subscription %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// ResumeSubscription makes a paused subscription active again: its failure count
// starts over and the deliveries that ran out of attempts get a new set of them,
// so nothing enqueued while it was failing is lost. Resuming an active one
// changes nothing.
func (db *DB) ResumeSubscription(ctx context.Context, id string) (Subscription, error) {
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		var state string
		if err := tx.QueryRow(ctx, `SELECT state FROM proactive_subscriptions WHERE id = $1 FOR UPDATE`, id).Scan(&state); err != nil {
			return err
		}
		if state != SubscriptionPaused {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE proactive_subscriptions SET state = 'active', failures = 0, paused_at = NULL,
			updated_at = now() WHERE id = $1`, id); err != nil {
			return err
		}
		// A delivery still in flight keeps its lease, so no other replica sends it
		// meanwhile; its attempt is recorded against its fencing token as usual.
		_, err := tx.Exec(ctx, `UPDATE proactive_deliveries SET state = 'pending', attempt_floor = attempts,
			lease_until = CASE WHEN state = 'dead' THEN NULL ELSE lease_until END,
			next_attempt_at = now(), updated_at = now() WHERE subscription_id = $1 AND state IN ('pending', 'dead')`, id)
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Subscription{}, ErrNotFound
	}
	if err != nil {
		return Subscription{}, fmt.Errorf("resume subscription %s: %w", id, err)
	}
	return db.GetSubscription(ctx, id)
}

// EnsureConfigSubscription keeps the subscription of the configured callback in step
// with the configuration: created or pointed at url, or removed (with what it had
// still to deliver) when url is empty. Its state and failures are kept.
func (db *DB) EnsureConfigSubscription(ctx context.Context, url string) error {
	var err error
	if url == "" {
		_, err = db.pool.Exec(ctx, `DELETE FROM proactive_subscriptions WHERE id = $1`, ConfigSubscriptionID)
	} else {
		_, err = db.pool.Exec(ctx, `INSERT INTO proactive_subscriptions (id, origin, url) VALUES ($1, 'config', $2)
			ON CONFLICT (id) DO UPDATE SET url = excluded.url, updated_at = now() WHERE proactive_subscriptions.url <> excluded.url`,
			ConfigSubscriptionID, url)
	}
	if err != nil {
		return fmt.Errorf("configured callback subscription: %w", err)
	}
	return nil
}

// subscriber is a subscription an event change is enqueued for.
type subscriber struct {
	id, locale string
}

// matchingSubscriptions are the subscriptions whose filters take an event, paused
// ones included: what they miss while paused waits for them.
func matchingSubscriptions(ctx context.Context, tx pgx.Tx, e ProactiveEvent) ([]subscriber, error) {
	rows, err := tx.Query(ctx, `
		SELECT id, locale FROM proactive_subscriptions s
		WHERE url <> ''
		  AND (cardinality(s.monitors) = 0 OR EXISTS (SELECT 1 FROM unnest(s.monitors) m WHERE lower(m) = lower($1)))
		  AND (cardinality(s.topics) = 0 OR $2 = ANY(s.topics))
		  AND (cardinality(s.instances) = 0 OR $3 = ANY(s.instances))
		ORDER BY id`, e.Monitor, e.Topic, e.Instance)
	if err != nil {
		return nil, fmt.Errorf("matching subscriptions: %w", err)
	}
	var out []subscriber
	for rows.Next() {
		var s subscriber
		if err := rows.Scan(&s.id, &s.locale); err != nil {
			rows.Close()
			return nil, fmt.Errorf("matching subscriptions: %w", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("matching subscriptions: %w", err)
	}
	return out, nil
}
