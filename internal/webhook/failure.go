package webhook

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Messages of the delivery log's last_error (licensor.Delivery.LastError).
// They are stable, short and say what an operator or the receiver's owner
// can act on, never more: no resolver or receiver addresses, ports or Go
// error text, which go to the server's log line of the attempt instead.
// "HTTP <status>" and "timeout after <duration>" complete the list.
const (
	failNotAllowed    = "address not allowed: the URL resolves to an address deliveries may not reach (loopback, private, link-local, multicast or reserved)"
	failHostNotFound  = "host not found"
	failDNS           = "DNS lookup failed"
	failRefused       = "connection refused"
	failReset         = "connection reset by the receiver"
	failUnreachable   = "host unreachable"
	failClosed        = "connection closed by the receiver before it answered"
	failTLSUntrusted  = "TLS certificate not trusted"
	failTLSHost       = "TLS certificate not valid for the host"
	failTLSInvalid    = "TLS certificate invalid or expired"
	failNotTLS        = "TLS handshake failed: the receiver does not speak TLS"
	failTLS           = "TLS handshake failed"
	failBadResponse   = "malformed HTTP response"
	failRequest       = "the request could not be built"
	failUnknown       = "delivery failed (the server log has the cause)"
	failHTTPPrefix    = "HTTP "
	failTimeoutPrefix = "timeout after "
)

// httpStatusError is the failure of an attempt the receiver answered
// with a status other than 2xx.
type httpStatusError int

func (e httpStatusError) Error() string { return failHTTPPrefix + strconv.Itoa(int(e)) }

// requestError is a failure to build the request (never the receiver's
// doing).
type requestError struct{ err error }

func (e requestError) Error() string { return "webhook: build request: " + e.err.Error() }
func (e requestError) Unwrap() error { return e.err }

// describe turns the failure of an attempt into its last_error message;
// timeout is the attempt's time limit.
func describe(err error, timeout time.Duration) string {
	var (
		status  httpStatusError
		dnsErr  *net.DNSError
		netErr  net.Error
		reqErr  requestError
		unknown x509.UnknownAuthorityError
		hostErr x509.HostnameError
		invalid x509.CertificateInvalidError
		verify  *tls.CertificateVerificationError
		record  tls.RecordHeaderError
		alert   tls.AlertError
	)
	switch {
	case errors.As(err, &status):
		return status.Error()
	case errors.As(err, &reqErr):
		return failRequest
	case errors.Is(err, ErrAddressNotAllowed):
		return failNotAllowed
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return failHostNotFound
		}
		if dnsErr.IsTimeout {
			return failTimeoutPrefix + timeout.String() + " (DNS lookup)"
		}
		return failDNS
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return failTimeoutPrefix + timeout.String()
	case errors.Is(err, syscall.ECONNREFUSED):
		return failRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return failReset
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return failUnreachable
	case errors.As(err, &hostErr):
		return failTLSHost
	case errors.As(err, &unknown):
		return failTLSUntrusted
	case errors.As(err, &invalid):
		return failTLSInvalid
	case errors.As(err, &verify):
		return failTLSUntrusted
	case errors.As(err, &record), errors.Is(err, http.ErrSchemeMismatch):
		return failNotTLS
	case errors.As(err, &alert):
		return failTLS
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return failClosed
	}
	// net/http has no exported error for these.
	switch msg := err.Error(); {
	case strings.Contains(msg, "server closed idle connection"):
		return failClosed
	case strings.Contains(msg, "malformed HTTP"):
		return failBadResponse
	}
	return failUnknown
}
