package postgres

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/licensor/licensor"
)

// Bounds that make requests fail fast, with 503, when the database is
// unreachable instead of hanging with it.
const (
	// connectTimeout bounds one connection attempt when the URL sets no
	// connect_timeout.
	connectTimeout = 5 * time.Second
	// acquireTimeout bounds the wait for a pooled connection (including
	// connecting one) at the start of a transaction.
	acquireTimeout = 5 * time.Second
)

// Unavailable classifies an error of any store method: the errors that mean
// the database cannot be used right now become licensor.CodeUnavailable
// (503); others are returned unchanged. The API applies it to every
// internal error, so read paths need not wrap each call.
func (db *DB) Unavailable(err error) error { return unavailable(err) }

// unavailable marks the errors that mean the database cannot be used right
// now as licensor.CodeUnavailable (503), keeping the driver's error in the
// chain for the log; any other error is returned unchanged. They are: a
// failed connection attempt, a connection lost mid-statement, a server
// shutting down, starting up or out of connections or disk, and a timeout
// waiting for a connection.
//
// A failed TLS connection is named as what it is, not as an outage to
// wait out: a refused certificate (x509: unknown authority, wrong host
// name, expired) or a failed handshake (the server refused TLS, a
// protocol alert). It is still CodeUnavailable: the database cannot be
// used, but retrying will not help until the configuration changes.
func unavailable(err error) error {
	if err == nil || !isUnavailable(err) {
		return err
	}
	msg := "the database is not reachable; retry later"
	switch tlsFailure(err) {
	case "certificate":
		msg = "the database's TLS certificate was refused (x509): check the URL's sslmode, sslrootcert and host name, or the server's certificate"
	case "handshake":
		msg = "the TLS handshake with the database failed: check the URL's sslmode and the server's TLS settings"
	}
	return fmt.Errorf("%w: %w", licensor.Errorf(licensor.CodeUnavailable, "%s", msg), err)
}

// tlsFailure classifies a connection error: "certificate" when the
// server's certificate was refused, "handshake" when TLS could not be
// negotiated, "" for anything else.
func tlsFailure(err error) string {
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		alert    tls.AlertError
		record   tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &verify), errors.As(err, &unknown), errors.As(err, &hostname), errors.As(err, &invalid):
		return "certificate"
	case errors.As(err, &alert), errors.As(err, &record),
		// pgconn's own error when the server answers no to SSLRequest.
		strings.Contains(err.Error(), "server refused TLS connection"),
		strings.Contains(err.Error(), "tls: "):
		return "handshake"
	}
	return ""
}

func isUnavailable(err error) bool {
	var le *licensor.Error
	if errors.As(err, &le) {
		return false // already interpreted
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"): // connection exception
			return true
		case pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03": // admin or crash shutdown, cannot connect now
			return true
		case strings.HasPrefix(pe.Code, "53"): // insufficient resources: disk full, out of memory, too many connections
			return true
		case strings.HasPrefix(pe.Code, "58"): // system error: I/O error
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || pgconn.Timeout(err) ||
		errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, context.DeadlineExceeded)
}

// beginTxFunc runs fn in a transaction on a pooled connection, waiting at
// most acquireTimeout for the connection.
func (db *DB) beginTxFunc(ctx context.Context, opts pgx.TxOptions, fn func(tx pgx.Tx) error) error {
	actx, cancel := context.WithTimeout(ctx, acquireTimeout)
	conn, err := db.pool.Acquire(actx)
	cancel()
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("no database connection within %v: %w", acquireTimeout, err)
		}
		return err
	}
	defer conn.Release()
	return pgx.BeginTxFunc(ctx, conn, opts, fn)
}
