package sqlstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/licensor/licensor"
)

// hotChunk is how many users one INSERT of SaveHotUsers carries (three
// parameters each: 15,000, within SQLite's 32,766 and PostgreSQL's 65,535).
const hotChunk = 5000

// SaveHotUsers replaces the hot set in one transaction: the rows of
// earlier saves go, users' are inserted in chunks. On PostgreSQL a
// concurrent save's rows, committed after this one's DELETE began, stay,
// and a user in both keeps the first row (ON CONFLICT DO NOTHING): two
// instances stopping at once leave the union of their sets.
func (s Shared) SaveHotUsers(ctx context.Context, users []string, now int64) error {
	if len(users) > licensor.MaxHotUsers {
		return fmt.Errorf("save %d hot users: more than %d", len(users), licensor.MaxHotUsers)
	}
	err := s.Engine.Write(ctx, Many, func(ctx context.Context, tx Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM entitlement_hot_users`); err != nil {
			return err
		}
		for i := 0; i < len(users); i += hotChunk {
			chunk := users[i:min(i+hotChunk, len(users))]
			var q strings.Builder
			q.WriteString(`INSERT INTO entitlement_hot_users (user_id, seq, saved_at) VALUES `)
			args := make([]any, 0, 3*len(chunk))
			for j, u := range chunk {
				if j > 0 {
					q.WriteString(", ")
				}
				q.WriteString("(?, ?, ?)")
				args = append(args, u, i+j, now)
			}
			q.WriteString(` ON CONFLICT (user_id) DO NOTHING`)
			if _, err := tx.Exec(ctx, q.String(), args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return s.fail("save hot users", s.Engine.Unavailable(err))
	}
	return nil
}

// HotUsers reads the hot set, the latest save's users first.
func (s Shared) HotUsers(ctx context.Context, limit int) ([]string, int64, error) {
	var savedAt int64
	users, err := Collect(ctx, s.Engine.Reader(), func(r Scanner) (string, error) {
		var u string
		var at int64
		err := r.Scan(&u, &at)
		savedAt = max(savedAt, at)
		return u, err
	}, `SELECT user_id, saved_at FROM entitlement_hot_users ORDER BY saved_at DESC, seq, user_id LIMIT ?`, limit)
	if err != nil {
		return nil, 0, s.fail("read hot users", s.Engine.Unavailable(err))
	}
	return users, savedAt, nil
}
