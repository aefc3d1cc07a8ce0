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
	"github.com/licensor/licensor/internal/storetest"
)

func TestUnavailable(t *testing.T) {
	storetest.CheckUnavailable(t, unavailable, []storetest.UnavailableCase{
		{Name: "admin shutdown", Err: &pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"}, Want: true},
		{Name: "starting up", Err: &pgconn.PgError{Code: "57P03"}, Want: true},
		{Name: "too many connections", Err: &pgconn.PgError{Code: "53300"}, Want: true},
		{Name: "disk full", Err: &pgconn.PgError{Code: "53100"}, Want: true},
		{Name: "connection failure", Err: &pgconn.PgError{Code: "08006"}, Want: true},
		{Name: "I/O error", Err: &pgconn.PgError{Code: "58030"}, Want: true},
		{Name: "unique violation", Err: &pgconn.PgError{Code: "23505"}, Want: false},
		{Name: "undefined table", Err: &pgconn.PgError{Code: "42P01"}, Want: false},
		{Name: "refused", Err: fmt.Errorf("dial: %w", &net.OpError{Op: "dial", Err: errors.New("connection refused")}), Want: true},
		{Name: "lost mid-statement", Err: fmt.Errorf("failed to receive message: %w", io.ErrUnexpectedEOF), Want: true},
		{Name: "closed", Err: pgconn.ErrConnClosed, Want: true},
		{Name: "acquire deadline", Err: fmt.Errorf("no database connection within 5s: %w", context.DeadlineExceeded), Want: true},
		{Name: "client went away", Err: context.Canceled, Want: false},
		{Name: "domain error", Err: licensor.Errorf(licensor.CodeProductNotFound, "no"), Want: false},
		{Name: "other", Err: errors.New("something else"), Want: false},
	})
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
	db := openAt(t, u, Options{MaxConns: 1})
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
