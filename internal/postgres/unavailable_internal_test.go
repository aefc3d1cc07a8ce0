package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/licensor/licensor"
)

func TestUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"admin shutdown", &pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"}, true},
		{"starting up", &pgconn.PgError{Code: "57P03"}, true},
		{"too many connections", &pgconn.PgError{Code: "53300"}, true},
		{"disk full", &pgconn.PgError{Code: "53100"}, true},
		{"connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"I/O error", &pgconn.PgError{Code: "58030"}, true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"undefined table", &pgconn.PgError{Code: "42P01"}, false},
		{"refused", fmt.Errorf("dial: %w", &net.OpError{Op: "dial", Err: errors.New("connection refused")}), true},
		{"lost mid-statement", fmt.Errorf("failed to receive message: %w", io.ErrUnexpectedEOF), true},
		{"closed", pgconn.ErrConnClosed, true},
		{"acquire deadline", fmt.Errorf("no database connection within 5s: %w", context.DeadlineExceeded), true},
		{"client went away", context.Canceled, false},
		{"domain error", licensor.Errorf(licensor.CodeProductNotFound, "no"), false},
		{"other", errors.New("something else"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := unavailable(tc.err)
			if !errors.Is(got, tc.err) {
				t.Errorf("the cause is lost: %v", got)
			}
			if is := licensor.ErrorCode(got) == licensor.CodeUnavailable; is != tc.want {
				t.Errorf("unavailable(%v) has code %s", tc.err, licensor.ErrorCode(got))
			}
			if tc.want && !strings.Contains(got.Error(), tc.err.Error()) {
				t.Errorf("the message lost the cause: %v", got)
			}
		})
	}
	if unavailable(nil) != nil {
		t.Error("unavailable(nil) is not nil")
	}
}

// TestOpenUnreachable: a database nobody answers for fails Open quickly with
// UNAVAILABLE.
func TestOpenUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	start := time.Now()
	_, err = Open(t.Context(), "postgres://licensor:secret@"+addr+"/licensor?sslmode=disable", Options{})
	if licensor.ErrorCode(err) != licensor.CodeUnavailable {
		t.Fatalf("Open: %v, want UNAVAILABLE", err)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("the error carries the password: %v", err)
	}
	t.Logf("refused after %v: %v", time.Since(start), err)
}

// TestAcquireTimeout: with every pooled connection taken, a write gives up
// after acquireTimeout with UNAVAILABLE instead of waiting for ever.
func TestAcquireTimeout(t *testing.T) {
	u := schemaURL(t)
	db, err := Open(t.Context(), u, Options{MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	held, err := db.pool.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	start := time.Now()
	err = db.TouchAPIKeys(t.Context(), map[int64]int64{1: 1})
	if licensor.ErrorCode(err) != licensor.CodeUnavailable {
		t.Fatalf("write with the pool exhausted: %v, want UNAVAILABLE", err)
	}
	if waited := time.Since(start); waited < acquireTimeout {
		t.Errorf("gave up after %v, before %v", waited, acquireTimeout)
	}
}
