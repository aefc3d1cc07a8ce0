package postgres

import (
	"context"
	"fmt"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/sqlstore"
)

// CreateConsoleSession stores a console session.
func (db *DB) CreateConsoleSession(ctx context.Context, s *licensor.ConsoleSession) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO console_sessions (id, key_id, key_prefix, csrf, created_at, seen_at, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)`, s.ID, s.KeyID, s.KeyPrefix, s.CSRF, s.CreatedAt, s.SeenAt, s.ExpiresAt)
	if err != nil {
		return fmt.Errorf("postgres: create console session: %w", interpretError(err))
	}
	return nil
}

// FindConsoleSession returns the session with that id.
func (db *DB) FindConsoleSession(ctx context.Context, id string) (*licensor.ConsoleSession, error) {
	var s licensor.ConsoleSession
	err := db.pool.QueryRow(ctx, `SELECT id, key_id, key_prefix, csrf, created_at, seen_at, expires_at
FROM console_sessions WHERE id = $1`, id).Scan(&s.ID, &s.KeyID, &s.KeyPrefix, &s.CSRF, &s.CreatedAt, &s.SeenAt, &s.ExpiresAt)
	if sqlstore.NoRow(err) {
		return nil, fmt.Errorf("postgres: find console session: %w", licensor.Errorf(licensor.CodeNotFound, "no such console session"))
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: find console session: %w", err)
	}
	return &s, nil
}

// TouchConsoleSession records a session's last request.
func (db *DB) TouchConsoleSession(ctx context.Context, id string, seenAt int64) error {
	if _, err := db.pool.Exec(ctx, `UPDATE console_sessions SET seen_at = $1 WHERE id = $2 AND seen_at < $1`, seenAt, id); err != nil {
		return fmt.Errorf("postgres: touch console session: %w", err)
	}
	return nil
}

// DeleteConsoleSession removes a session.
func (db *DB) DeleteConsoleSession(ctx context.Context, id string) error {
	if _, err := db.pool.Exec(ctx, `DELETE FROM console_sessions WHERE id = $1`, id); err != nil {
		return fmt.Errorf("postgres: delete console session: %w", err)
	}
	return nil
}

// PruneConsoleSessions deletes expired and idle sessions.
func (db *DB) PruneConsoleSessions(ctx context.Context, now, idleBefore int64) (int64, error) {
	tag, err := db.pool.Exec(ctx, `DELETE FROM console_sessions WHERE expires_at <= $1 OR seen_at <= $2`, now, idleBefore)
	if err != nil {
		return 0, fmt.Errorf("postgres: prune console sessions: %w", err)
	}
	return tag.RowsAffected(), nil
}

// EventHead returns the position of the last committed event.
func (db *DB) EventHead(ctx context.Context) (int64, error) {
	var seq int64
	if err := db.pool.QueryRow(ctx, `SELECT seq FROM event_head WHERE id = 1`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("postgres: event head: %w", err)
	}
	return seq, nil
}
