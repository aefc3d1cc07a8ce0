package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Backup writes a consistent copy of the database file named by dsn to
// the new file to, while other connections (a running server) go on
// reading and writing: VACUUM INTO reads one snapshot in a read
// transaction, which in WAL mode never blocks a writer. The copy is made
// under a temporary name, checked (PRAGMA integrity_check), flushed to
// disk and then renamed to to, so a crash never leaves a partial file
// under that name. It refuses to overwrite an existing file, and a file
// without a licensor schema. It returns the copy's size and schema version.
//
// The copy is an ordinary SQLite database with the same schema and data;
// restoring it is stopping the servers, putting it in place of the file
// (and removing the old file's -wal and -shm), and starting them again.
func Backup(ctx context.Context, dsn, to string) (BackupInfo, error) {
	info, err := backup(ctx, dsn, to)
	if err != nil {
		return BackupInfo{}, fmt.Errorf("sqlite: backup: %w", err)
	}
	return info, nil
}

// BackupInfo describes a copy made by Backup.
type BackupInfo struct {
	Bytes         int64
	SchemaVersion int
}

func backup(ctx context.Context, dsn, to string) (info BackupInfo, err error) {
	base, query, memory, err := splitDSN(dsn)
	if err != nil {
		return info, err
	}
	if memory {
		return info, errors.New("an in-memory database has no file to back up")
	}
	if _, err := os.Lstat(to); err == nil {
		return info, fmt.Errorf("%s already exists: give a new file", to)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return info, err
	}
	tmp := filepath.Join(filepath.Dir(to), "."+filepath.Base(to)+".partial")
	_ = os.Remove(tmp) // a leftover of an interrupted backup
	defer os.Remove(tmp)

	src, err := sql.Open("sqlite", withParams(base, query, "mode", "ro",
		"_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout)))
	if err != nil {
		return info, err
	}
	defer src.Close()
	src.SetMaxOpenConns(1)
	var tables int
	if err := src.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE name = 'schema_migrations'`).Scan(&tables); err != nil {
		return info, err
	}
	if tables == 0 {
		return info, errors.New("the database has no licensor schema")
	}
	if _, err := src.ExecContext(ctx, `VACUUM INTO ?`, tmp); err != nil {
		return info, err
	}

	dst, err := sql.Open("sqlite", withParams(splitPath(tmp), "", "mode", "rw"))
	if err != nil {
		return info, err
	}
	var verdict string
	err = dst.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&verdict)
	if err == nil && verdict == "ok" {
		err = dst.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&info.SchemaVersion)
	}
	dst.Close()
	if err != nil {
		return info, fmt.Errorf("check the copy: %w", err)
	}
	if verdict != "ok" {
		return info, fmt.Errorf("the copy fails its integrity check: %s", verdict)
	}
	if err := syncFile(tmp); err != nil {
		return info, err
	}
	st, err := os.Stat(tmp)
	if err != nil {
		return info, err
	}
	info.Bytes = st.Size()
	if err := os.Rename(tmp, to); err != nil {
		return info, err
	}
	return info, syncFile(filepath.Dir(to))
}

// splitPath is the "file:" URI of a plain path.
func splitPath(path string) string {
	base, _, _, _ := splitDSN(path)
	return base
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
