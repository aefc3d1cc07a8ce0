package webhook_test

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/webhook"
)

func TestPolicyAllowed(t *testing.T) {
	def := webhook.Policy{}
	for addr, want := range map[string]bool{
		"93.184.215.14":        true,
		"2606:2800:21f:cb07::": true,
		"127.0.0.1":            false,
		"::1":                  false,
		"10.1.2.3":             false,
		"172.16.0.1":           false,
		"192.168.1.1":          false,
		"169.254.169.254":      false, // cloud metadata
		"fe80::1":              false,
		"fd00::1":              false,
		"0.0.0.0":              false,
		"::":                   false,
		"224.0.0.1":            false,
		"ff02::1":              false,
		"100.64.0.1":           false,
		"255.255.255.255":      false,
		"::ffff:127.0.0.1":     false, // IPv4-mapped loopback
		"::ffff:10.0.0.1":      false,
		"64:ff9b::a00:1":       false, // NAT64 of 10.0.0.1
		"2002:a00:1::":         false, // 6to4 of 10.0.0.1
		// Every IPv6 form that embeds an internal IPv4 address.
		"::127.0.0.1":                 false, // IPv4-compatible loopback
		"::7f00:1":                    false, // the same, in hex
		"::a9fe:a9fe":                 false, // IPv4-compatible 169.254.169.254
		"::ffff:169.254.169.254":      false, // IPv4-mapped metadata
		"::ffff:0:127.0.0.1":          false, // IPv4-translated loopback
		"64:ff9b::127.0.0.1":          false, // NAT64 of loopback
		"64:ff9b::a9fe:a9fe":          false, // NAT64 of the metadata address
		"64:ff9b:1::a00:1":            false, // local-use NAT64
		"64:ff9b:1:a00:1::":           false, // local-use NAT64, /48 layout
		"2002:7f00:1::1":              false, // 6to4 of loopback
		"2001:0:5db8:d70e::80ff:fefe": false, // Teredo, client 127.0.1.1
		"fec0::1":                     false, // site-local
		"fe80::1%eth0":                false, // zoned link-local
		// The deprecated tunnels are refused whatever they embed; the
		// well-known NAT64 prefix is judged by its IPv4 address (DNS64).
		"::5db8:d70e":        false, // IPv4-compatible 93.184.215.14
		"2002:5db8:d70e::1":  false, // 6to4 of 93.184.215.14
		"64:ff9b::5db8:d70e": true,  // NAT64 of 93.184.215.14
	} {
		if got := def.Allowed(netip.MustParseAddr(addr)); got != want {
			t.Errorf("default policy, %s: allowed %v, want %v", addr, got, want)
		}
	}
	allow := webhook.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}}
	if !allow.Allowed(netip.MustParseAddr("10.1.2.3")) || allow.Allowed(netip.MustParseAddr("10.2.0.1")) {
		t.Error("allow-list: 10.1.0.0/16 should admit 10.1.2.3 and only it")
	}
	if !allow.Allowed(netip.MustParseAddr("64:ff9b::a01:203")) || !allow.Allowed(netip.MustParseAddr("::ffff:10.1.2.3")) {
		t.Error("allow-list: 10.1.0.0/16 should admit its NAT64 and mapped forms")
	}
	if allow.Allowed(netip.MustParseAddr("::10.1.2.3")) {
		t.Error("allow-list: the IPv4-compatible form is refused even for an allowed network")
	}
	if !(&webhook.Policy{AllowPrivate: true}).Allowed(netip.MustParseAddr("127.0.0.1")) {
		t.Error("AllowPrivate should admit loopback")
	}
}

func TestPolicyCheckURL(t *testing.T) {
	def := webhook.Policy{}
	for raw, ok := range map[string]bool{
		"https://hooks.example.com/licensor":         true,
		"https://hooks.example.com:8443/x?a=b":       true,
		"https://93.184.215.14/hook":                 true,
		"http://hooks.example.com/licensor":          false, // http not allowed
		"https://127.0.0.1/hook":                     false,
		"https://[::1]/hook":                         false,
		"https://169.254.169.254/latest":             false,
		"https://[::127.0.0.1]/hook":                 false,
		"https://[::7f00:1]/hook":                    false,
		"https://[::ffff:127.0.0.1]/hook":            false,
		"https://[::ffff:7f00:1]/hook":               false,
		"https://[64:ff9b::7f00:1]/hook":             false,
		"https://[64:ff9b:1::a00:1]/hook":            false,
		"https://[2002:7f00:1::]/hook":               false,
		"https://[2001:0:5db8:d70e::80ff:fefe]/hook": false,
		"https://[fe80::1%25eth0]/hook":              false,
		"https://[64:ff9b::5db8:d70e]/hook":          true,
		"https://user:pw@hooks.example.com/":         false,
		"https://hooks.example.com/#frag":            false,
		"ftp://hooks.example.com/":                   false,
		"/relative":                                  false,
		"":                                           false,
		"https://":                                   false,
	} {
		err := def.CheckURL(raw)
		if (err == nil) != ok {
			t.Errorf("CheckURL(%q): %v, want ok=%v", raw, err, ok)
		}
		if err != nil && licensor.ErrorCode(err) != licensor.CodeInvalidAttribute {
			t.Errorf("CheckURL(%q): code %s, want INVALID_ATTRIBUTE", raw, licensor.ErrorCode(err))
		}
	}
	lax := webhook.Policy{AllowHTTP: true, AllowPrivate: true}
	if err := lax.CheckURL("http://127.0.0.1:8080/hook"); err != nil {
		t.Errorf("lax policy: %v", err)
	}
}

// TestPolicyRefusesEmbeddedIPv4AtDial dials, through the policy's client,
// the IPv6 spellings of a loopback receiver that is listening: the check on
// the dialled address refuses each before a connection is made (a host
// name resolving to one of them meets the same check).
func TestPolicyRefusesEmbeddedIPv4AtDial(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	c := (&webhook.Policy{AllowHTTP: true}).Client(2 * time.Second)
	for _, host := range []string{"127.0.0.1", "::ffff:127.0.0.1", "::127.0.0.1", "::7f00:1", "64:ff9b::7f00:1", "2002:7f00:1::1", "::ffff:0:7f00:1"} {
		resp, err := c.Get("http://" + net.JoinHostPort(host, port) + "/")
		if err == nil {
			resp.Body.Close()
		}
		if !errors.Is(err, webhook.ErrAddressNotAllowed) {
			t.Errorf("dial %s: %v, want ErrAddressNotAllowed", host, err)
		}
	}
}
