package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"

	"github.com/licensor/licensor"
)

// Policy decides which URLs deliveries may go to: the protection against a
// webhook being used to reach the operator's internal services (SSRF).
//
// The address check runs when the connection is made, on the address
// actually dialled (a net.Dialer Control function), after DNS resolution:
// a host name that resolves to an internal address, or that changes its
// answer between the check and the connection (DNS rebinding), is refused
// all the same. Deliveries do not follow redirects and ignore the
// environment's HTTP proxy settings, either of which would let a request
// land somewhere the check never saw.
type Policy struct {
	// AllowHTTP allows http:// URLs; by default only https:// is accepted.
	AllowHTTP bool
	// AllowPrivate turns the address check off: any address may be
	// dialled, internal ones included.
	AllowPrivate bool
	// Allow lists networks that may be dialled even though they are
	// internal (a receiver inside the operator's network, say).
	Allow []netip.Prefix
}

// blocked are the networks a delivery may not reach unless allowed, on top
// of what netip.Addr's predicates cover (loopback, private, link-local,
// multicast, unspecified) and of the IPv6 forms that embed an IPv4
// address (embedded).
var blocked = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT, shared address space
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and broadcast
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("3fff::/20"),       // documentation
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("fec0::/10"),       // site-local (deprecated, still internal)
}

// IPv6 forms that carry an IPv4 address (RFC 4291, 6052, 8215, 3056, 4380,
// 7915). Through a translator, a tunnel or a dual stack, dialling one may
// reach the IPv4 address it embeds.
var (
	compatible = netip.MustParsePrefix("::/96")           // IPv4-compatible (deprecated): ::a.b.c.d
	translated = netip.MustParsePrefix("::ffff:0:0:0/96") // SIIT IPv4-translated: ::ffff:0:a.b.c.d
	nat64      = netip.MustParsePrefix("64:ff9b::/96")    // well-known NAT64 prefix: 64:ff9b::a.b.c.d
	nat64Local = netip.MustParsePrefix("64:ff9b:1::/48")  // local-use NAT64, IPv4 anywhere past the prefix
	sixToFour  = netip.MustParsePrefix("2002::/16")       // 6to4: 2002:AABB:CCDD::/48
	teredo     = netip.MustParsePrefix("2001::/32")       // Teredo: server IPv4, then the client's inverted
)

// embedded sorts out the IPv6 forms that embed an IPv4 address. refuse is
// true for the forms never dialled whatever they embed: IPv4-compatible
// and IPv4-translated addresses (deprecated, or only meaningful inside a
// translator), local-use NAT64 (the IPv4 address sits where the operator's
// prefix length says, so it cannot be checked), 6to4 and Teredo
// (deprecated tunnels to whatever relay answers; Teredo hides the client
// address). Otherwise, for a well-known NAT64 address, v4 is the IPv4
// address it reaches, which the policy judges as if it were dialled itself
// (an IPv6-only host behind DNS64 reaches public receivers this way).
func embedded(a netip.Addr) (v4 netip.Addr, refuse bool) {
	if !a.Is6() || a.Is4In6() {
		return netip.Addr{}, false
	}
	b := a.As16()
	switch {
	case compatible.Contains(a), translated.Contains(a), nat64Local.Contains(a),
		sixToFour.Contains(a), teredo.Contains(a):
		return netip.AddrFrom4([4]byte(b[12:])), true
	case nat64.Contains(a):
		return netip.AddrFrom4([4]byte(b[12:])), false
	}
	return netip.Addr{}, false
}

// ErrAddressNotAllowed is the error of a delivery the policy refused to
// dial.
var ErrAddressNotAllowed = errors.New("the webhook URL resolves to an address deliveries may not reach (loopback, private, link-local, multicast or reserved)")

// Allowed reports whether a delivery may connect to addr. An IPv6 address
// that embeds an IPv4 one (mapped, compatible, translated, NAT64, 6to4,
// Teredo) is refused, or, for a well-known NAT64 address, judged by the
// IPv4 address it embeds, so that no spelling of an internal IPv4 address
// gets through.
func (p *Policy) Allowed(addr netip.Addr) bool {
	if p.AllowPrivate {
		return true
	}
	if addr.Zone() != "" {
		return false // a zone names an interface: link-local by nature
	}
	addr = addr.Unmap()
	for _, n := range p.Allow {
		if n.Contains(addr) {
			return true
		}
	}
	if !addr.IsValid() || addr.IsLoopback() || addr.IsPrivate() || addr.IsUnspecified() ||
		addr.IsLinkLocalUnicast() || addr.IsLinkLocalMulticast() || addr.IsInterfaceLocalMulticast() ||
		addr.IsMulticast() {
		return false
	}
	for _, n := range blocked {
		if n.Contains(addr) {
			return false
		}
	}
	if v4, refuse := embedded(addr); refuse {
		return false
	} else if v4.IsValid() {
		return p.Allowed(v4)
	}
	return true
}

// CheckURL vets a webhook URL when it is created or changed: its form
// (licensor.ParseWebhookURL), its scheme, and, when the host is an IP
// address, the address. Host names are checked when deliveries connect.
// Errors are *licensor.Error with a pointer relative to the resource.
func (p *Policy) CheckURL(raw string) error {
	u, err := licensor.ParseWebhookURL(raw)
	if err != nil {
		return err
	}
	if u.Scheme == "http" && !p.AllowHTTP {
		return licensor.AttrError(licensor.CodeInvalidAttribute, "/attributes/url",
			"url must be https (this server does not allow plain http webhooks)")
	}
	if a, err := netip.ParseAddr(u.Hostname()); err == nil && !p.Allowed(a) {
		return licensor.AttrError(licensor.CodeInvalidAttribute, "/attributes/url",
			"url points to an address deliveries may not reach (loopback, private, link-local, multicast or reserved)")
	}
	return nil
}

// control is the net.Dialer Control function: it runs after resolution,
// before the connection, on the address being dialled.
func (p *Policy) control(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("webhook: dial %s: %w", address, err)
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("webhook: dial %s: %w", address, err)
	}
	if !p.Allowed(a) {
		return fmt.Errorf("dial %s: %w", a, ErrAddressNotAllowed)
	}
	return nil
}

// Client returns the HTTP client of deliveries: every connection checked
// by the policy, no redirects followed, no proxy, timeout per attempt.
func (p *Policy) Client(timeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: min(timeout, 10*time.Second), KeepAlive: 30 * time.Second, Control: p.control}
	transport := &http.Transport{
		Proxy: nil, // a proxy would dial on our behalf, past the check
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		},
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   min(timeout, 10*time.Second),
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{
		Transport: transport,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a 3xx is an answer, not a place to go
		},
	}
}
