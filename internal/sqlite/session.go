package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/sqlstore"
)

// CreateConsoleSession stores a console session.
func (db *DB) CreateConsoleSession(ctx context.Context, s *licensor.ConsoleSession) error {
	err := db.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO console_sessions (id, key_id, key_prefix, csrf, created_at, seen_at, expires_at)
VALUES (?, ?, ?, ?, ?, ?, ?)`, s.ID, s.KeyID, s.KeyPrefix, s.CSRF, s.CreatedAt, s.SeenAt, s.ExpiresAt)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: create console session: %w", interpretError(err))
	}
	return nil
}

// FindConsoleSession returns the session with that id.
func (db *DB) FindConsoleSession(ctx context.Context, id string) (*licensor.ConsoleSession, error) {
	var s licensor.ConsoleSession
	err := db.rq().QueryRowContext(pointQuery(ctx), `SELECT id, key_id, key_prefix, csrf, created_at, seen_at, expires_at
FROM console_sessions WHERE id = ?`, id).Scan(&s.ID, &s.KeyID, &s.KeyPrefix, &s.CSRF, &s.CreatedAt, &s.SeenAt, &s.ExpiresAt)
	if sqlstore.NoRow(err) {
		return nil, fmt.Errorf("sqlite: find console session: %w", licensor.Errorf(licensor.CodeNotFound, "no such console session"))
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: find console session: %w", unavailable(err))
	}
	return &s, nil
}

// TouchConsoleSession records a session's last request.
func (db *DB) TouchConsoleSession(ctx context.Context, id string, seenAt int64) error {
	err := db.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE console_sessions SET seen_at = ? WHERE id = ? AND seen_at < ?`, seenAt, id, seenAt)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: touch console session: %w", err)
	}
	return nil
}

// DeleteConsoleSession removes a session.
func (db *DB) DeleteConsoleSession(ctx context.Context, id string) error {
	err := db.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM console_sessions WHERE id = ?`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete console session: %w", err)
	}
	return nil
}

// PruneConsoleSessions deletes expired and idle sessions.
func (db *DB) PruneConsoleSessions(ctx context.Context, now, idleBefore int64) (int64, error) {
	n, err := db.writeOne(ctx, `DELETE FROM console_sessions WHERE expires_at <= ? OR seen_at <= ?`, now, idleBefore)
	if err != nil {
		return 0, fmt.Errorf("sqlite: prune console sessions: %w", err)
	}
	return n, nil
}

// EventHead returns the position of the last committed event.
func (db *DB) EventHead(ctx context.Context) (int64, error) {
	var seq int64
	if err := db.rq().QueryRowContext(pointQuery(ctx), `SELECT seq FROM event_head WHERE id = 1`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("sqlite: event head: %w", unavailable(err))
	}
	return seq, nil
}
