// Package nxql parses and evaluates the subset of NXQL, the query language of
// Nexthink V6 Engines (Web API v2.0, GET|POST /2/query), that dexbridge's topics,
// identification, remote-action polling and discovery need. nxsim's V6 mode runs
// it over the synthetic fleet that its Infinity mode answers with NQL, so both
// modes see the same devices.
//
// # The language, as Nexthink documents it
//
// A query is one s-expression (Nexthink's "NXQL language definition" and "NXQL
// tutorial" pages):
//
//	(select (name device_uid) (from device))                          plain objects
//	(select (name) (from device (where device (eq name (string "PC-1")))))
//	(select (start_time) (from session (where ...) (between now-7d now))
//	        (order_by start_time desc) (limit 100))                   plain events
//	(select ((session (end_time)) (user (name)))                      events with decoration
//	        (from (session user) (between midnight-1d midnight)))
//	(select (name number_of_sessions)                                 objects with activity
//	        (from device (with session (where user ...) (compute number_of_sessions)
//	                                   (between now-7d now))))
//	(select ((device (name)) (package (name)))                        two objects
//	        (from (device package) (with installation (where package (eq name (pattern "*Office*"))))))
//
// Documented: the select / from / where / with / compute / between / order_by /
// limit forms above; filters (eq|ne|gt|ge|lt|le field (type value)); typed values
// (string "x"), (enum established), (integer n), (pattern "*x*"); datetimes now-7d,
// midnight-1d and absolute ones; field names with wildcards (*antivirus*) and
// #-prefixed custom fields, categories and scores (#"score:Name/payload"); the
// API's query, platform (repeated: windows, mac_os, mobile), format (csv, html,
// xml, json) and p1, p2, ... parameters that replace %1, %2, ... in the query;
// Basic authentication; port 1671 on premises.
//
// # What nxsim assumes
//
// Where the documentation is silent, this package chooses; a V6 driver built on
// nxsim should expect to revisit these against a real Engine:
//
//   - Filters listed in one where clause are alternatives (OR) and separate where
//     clauses all apply (AND); the grouped remote-action query relies on it, NXQL
//     having no "in". (and ...), (or ...) and (not ...) are accepted as well.
//   - String, enumeration and pattern comparisons ignore case; '*' and '?' are
//     the pattern wildcards. A missing value fails every comparison but ne.
//   - Value types must match the field: a string field takes string or pattern,
//     numbers take integer or real, enumerations take enum or pattern, datetimes
//     take datetime (also now-7d in a filter). Datetimes are written
//     2025-01-31@08:00:00 (also with a T or a space, or a date alone) and are UTC;
//     results carry them as "2006-01-02T15:04:05" in UTC.
//   - with keeps only the objects that have matching events (an inner join); an
//     object without them has no row at all. Queries that need a row for every
//     device (the NQL "include") are written as two queries: see
//     testdata/queries.yaml.
//   - Aggregates are names the event table defines (number_of_sessions,
//     last_end_time, number_of_packages, average_cpu_usage, ...), not functions.
//   - Table and field names not confirmed by the public data model are nxsim's:
//     the device fields os_build, number_of_days_since_last_boot; the user fields
//     upn and email; the event tables session, installation, device_performance,
//     crash and remote_action_execution (request_uid, status, status_details,
//     outputs, time, purpose). The device's remote-action fields are
//     #"action:<remote action id>/<output>", with the outputs status,
//     status_details and time for the last execution's own state.
//   - The Engines define the categories #Location and #Department and the score
//     #"score:Device health" with its sub-score #"score:Device health/Restart"
//     (the fleet's dynamic fields); the field wildcard #* selects them all.
//   - device_uid is the collector UID nxsim's Infinity mode reports, so one
//     device has the same identifier in both modes.
//   - In results, a plain select's columns are named by the field as written
//     (custom fields without their quotes: #"score:Device health" is
//     "#score:Device health"); a decorated select's by table.field
//     ("device.name"); aggregates by their name.
//   - An unknown form, table, field, type or value is an *Error with the line and
//     column, and for an unknown name the names that would do (the Engines'
//     "error options").
//
// testdata/queries.yaml holds the NXQL forms of every saved NQL query of the
// topics and of config/queries.yaml, with the column mapping that
// TestNXQLFormsMatchNQL checks over the same fleet.
package nxql
