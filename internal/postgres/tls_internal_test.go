package postgres

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/licensor/licensor"
)

// fakeServer accepts connections on a loopback port and answers the
// client's SSLRequest with answer ('S' then a TLS handshake with cert, or
// 'N'); it returns the port.
func fakeServer(t *testing.T, answer byte, cert tls.Certificate) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				req := make([]byte, 8)
				if _, err := io.ReadFull(c, req); err != nil {
					return
				}
				c.Write([]byte{answer})
				if answer == 'S' {
					tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
					_ = tc.Handshake()
					tc.Close()
				}
			}()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "db.test"},
		DNSNames: []string{"localhost"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestOpenTLSFailures: a refused certificate and a failed TLS handshake
// are named as such, not as an outage to retry later; a closed port is.
func TestOpenTLSFailures(t *testing.T) {
	cert := selfSigned(t)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := strings.TrimPrefix(closed.Addr().String(), "127.0.0.1:")
	closed.Close()
	for _, c := range []struct {
		name, url, want string
	}{
		{"untrusted certificate", "postgres://u@localhost:" + fakeServer(t, 'S', cert) + "/db?sslmode=verify-full", "TLS certificate was refused (x509)"},
		{"server refuses TLS", "postgres://u@127.0.0.1:" + fakeServer(t, 'N', cert) + "/db?sslmode=require", "TLS handshake with the database failed"},
		{"connection refused", "postgres://u@127.0.0.1:" + closedPort + "/db?sslmode=disable", "not reachable; retry later"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			db, err := Open(ctx, c.url, Options{})
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded")
			}
			if licensor.ErrorCode(err) != licensor.CodeUnavailable || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Open: %v\nwant %s, mentioning %q", err, licensor.CodeUnavailable, c.want)
			}
			if c.name != "connection refused" && strings.Contains(err.Error(), "retry later") {
				t.Errorf("a TLS failure reads as an outage: %v", err)
			}
		})
	}
}
