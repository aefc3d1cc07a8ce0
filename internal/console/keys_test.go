package console_test

import (
	"strings"
	"testing"
	"time"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/testdb"
)

// TestKeysInBrowser: the API keys page lists keys without their hashes,
// creates a key whose secret is shown once (and works), rotates a key
// (new secret once, the old one in its grace period) and revokes one
// after a confirmation;
// a forged CSRF token changes nothing; a read key has no such page.
func TestKeysInBrowser(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		f := newFixture(t, e.Open(t))
		b := newBrowser(t)
		shots := e.Name == "sqlite"
		f.signin(t, b, f.writeKey)

		b.open(t, f.url("/keys"))
		list := b.text(t, "table[aria-labelledby=list]")
		for _, want := range []string{"ops-alice", "support-bob", "old-key", "revoked", "active"} {
			if !strings.Contains(list, want) {
				t.Errorf("keys list lacks %q:\n%s", want, list)
			}
		}
		b.axe(t, "keys")

		// A bad name is refused with the form kept.
		b.submit(t, "form[action='/console/keys'] button", map[string]string{"#k-name": "bad name", "#k-networks": "10.0.0.0/8"})
		if got := b.text(t, "[role=alert]"); !strings.Contains(got, "key name") {
			t.Errorf("bad name: %q", got)
		}
		if got := eval[string](t, b, `document.querySelector("#k-networks").value`); got != "10.0.0.0/8" {
			t.Errorf("the form lost its networks: %q", got)
		}

		// Create: the secret once, and it is a working key of that scope.
		b.run(t, discard(eval2(`document.querySelector("#k-scope").value = "write"; document.querySelector("#k-networks").value = ""; ""`)))
		b.submit(t, "form[action='/console/keys'] button", map[string]string{"#k-name": "bss-2", "#k-expires": "P90D"})
		secret := b.text(t, "#secret")
		prefix, ok := licensor.APIKeyPrefix(secret)
		if !ok {
			t.Fatalf("no secret shown: %q\n%s", secret, b.text(t, "main"))
		}
		k, err := f.store.FindAPIKeyByPrefix(t.Context(), prefix)
		if err != nil || !k.Matches(secret) || k.Name != "bss-2" || k.Scope != licensor.ScopeWrite || k.ExpiresAt == nil {
			t.Fatalf("created key: %+v, %v", k, err)
		}
		b.axe(t, "keys with a new secret")
		if shots {
			t.Log("screenshot:", b.screenshot(t, "keys-created"))
		}
		b.open(t, f.url("/keys"))
		if strings.Contains(b.html(t), secret) {
			t.Errorf("the secret is shown again")
		}

		// Revoke asks first; a forged CSRF token on its form changes
		// nothing, and neither does Keep it.
		b.open(t, f.url("/keys"))
		b.submit(t, "tr[data-prefix='"+prefix+"'] a[href$='/revoke']", nil)
		if got := b.text(t, "#confirm"); !strings.Contains(got, "bss-2") || !strings.Contains(got, "cannot be undone") || strings.Contains(got, "yours included") {
			t.Errorf("revoke confirmation: %q", got)
		}
		b.axe(t, "key revocation")
		if shots {
			t.Log("screenshot:", b.screenshot(t, "key-revoke"))
		}
		b.submit(t, "#confirm a.button", nil)
		if k, _ := f.store.FindAPIKeyByPrefix(t.Context(), prefix); k.RevokedAt != nil || b.path(t) != "/console/keys" {
			t.Fatalf("Keep it revoked the key, or is not the keys page: %s", b.path(t))
		}
		b.open(t, f.url("/keys/"+prefix+"/revoke"))
		sel := "form[action$='/revoke']"
		b.run(t, discard(eval2(`document.querySelector("`+sel+` input[name=csrf]").value = "forged"; ""`)))
		b.submit(t, sel+" button", nil)
		if got := b.text(t, "[role=alert]"); !strings.Contains(got, "CSRF") {
			t.Errorf("forged CSRF on revoke: %q", got)
		}
		if k, _ := f.store.FindAPIKeyByPrefix(t.Context(), prefix); k.RevokedAt != nil {
			t.Fatalf("the forged revoke revoked")
		}

		// Rotate with no grace: a new secret; the old key is refused.
		b.open(t, f.url("/keys"))
		rot := "tr[data-prefix='" + prefix + "'] form.rotate"
		b.run(t, discard(eval2(`document.querySelector("`+rot+` select").value = "0s"; ""`)))
		b.submit(t, rot+" button", nil)
		secret2 := b.text(t, "#secret")
		prefix2, ok := licensor.APIKeyPrefix(secret2)
		if !ok || prefix2 == prefix {
			t.Fatalf("rotate: secret %q", secret2)
		}
		if k, err := f.store.FindAPIKeyByPrefix(t.Context(), prefix2); err != nil || !k.Matches(secret2) || k.Name != "bss-2" {
			t.Fatalf("rotated key: %+v %v", k, err)
		}
		// (By the clock: on a loaded machine the test is many seconds past f.now here.)
		if old, _ := f.store.FindAPIKeyByPrefix(t.Context(), prefix); old.Usable(time.Now().Unix()+1) == nil {
			t.Errorf("the old key still works after a rotation without grace")
		}

		// Revoke the new one, confirmed.
		b.open(t, f.url("/keys"))
		b.submit(t, "tr[data-prefix='"+prefix2+"'] a[href$='/revoke']", nil)
		b.submit(t, "form[action$='/revoke'] button", nil)
		if got := b.text(t, "[role=status]"); !strings.Contains(got, "revoked") {
			t.Errorf("after revoke: %q", got)
		}
		if k, _ := f.store.FindAPIKeyByPrefix(t.Context(), prefix2); k.RevokedAt == nil {
			t.Errorf("not revoked")
		}
		if shots {
			t.Log("screenshot:", b.screenshot(t, "keys"))
		}
		b.narrow(t, f.url("/keys"), map[bool]string{true: "keys-narrow"}[shots])
		f.noSecrets(t, b, secret, secret2)

		// A read key: no link, and the page refuses.
		b.submit(t, "form[action='/console/signout'] button", nil)
		f.signin(t, b, f.readKey)
		if n := eval[int](t, b, `document.querySelectorAll("a[href='/console/keys']").length`); n != 0 {
			t.Errorf("a read key is offered the keys page")
		}
		b.open(t, f.url("/keys"))
		if got := b.text(t, "[role=alert]"); !strings.Contains(got, "write key") {
			t.Errorf("read key on /keys: %q", got)
		}
	})
}
