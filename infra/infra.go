// Package infra holds what dexbridge needs from its surroundings: the PostgreSQL
// migrations (embedded in the binary), the NATS server configuration for production
// deployments and the compose support files.
package infra

import "embed"

// Migrations are the SQL migrations, applied in file-name order; a file's leading
// number is its version. Never edit an applied migration: add a new one.
//
//go:embed migrations/*.sql
var Migrations embed.FS
