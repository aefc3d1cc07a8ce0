package console

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/licensor/licensor"
)

// keyRow is how the keys page shows a key: never its hash.
type keyRow struct {
	licensor.APIKey
	Status string // active, rotating, revoked, expired
}

type keysData struct {
	Keys   []keyRow
	Scopes []licensor.Scope
	Graces []string
	// Secret is a key just created or rotated: shown in this one response
	// (not stored, not in a URL, not logged).
	Secret     string
	SecretName string
	Problem    string
	Name       string // the create form's values, kept after a problem
	Scope      string
	Networks   string
	Expires    string
	// Confirm is the key a revocation asks about; Self when it is the
	// signed-in key.
	Confirm *keyRow
	Self    bool
}

func keyStatus(k *licensor.APIKey, now int64) string {
	switch {
	case k.RevokedAt != nil && *k.RevokedAt <= now:
		return "revoked"
	case k.ExpiresAt != nil && *k.ExpiresAt <= now:
		return "expired"
	case k.RevokedAt != nil:
		return "rotating"
	}
	return "active"
}

// keys lists the API keys (write keys only: the page manages credentials).
func (c *Console) keys(w http.ResponseWriter, r *http.Request, s *session) error {
	return c.showKeys(w, r, s, http.StatusOK, keysData{Scope: string(licensor.ScopeRead)})
}

func (c *Console) showKeys(w http.ResponseWriter, r *http.Request, s *session, status int, d keysData) error {
	keys, err := c.store.FindAPIKeys(r.Context())
	if err != nil {
		return err
	}
	now := c.now()
	for i := len(keys) - 1; i >= 0; i-- { // newest first
		d.Keys = append(d.Keys, keyRow{keys[i], keyStatus(&keys[i], now)})
	}
	d.Scopes = []licensor.Scope{licensor.ScopeRead, licensor.ScopeWrite}
	d.Graces = []string{"0s", "1h", "24h", "168h"}
	c.render(w, r, status, "keys", s, page{Title: "API keys", Nav: "keys", Data: d})
	return nil
}

// lifetime reads an expiry as a Go duration (720h) or an ISO-8601 period
// (P90D), as licensor keys create --expires does.
func lifetime(now time.Time, v string) (int64, error) {
	if d, err := time.ParseDuration(v); err == nil {
		if d <= 0 {
			return 0, fmt.Errorf("the lifetime must be positive")
		}
		return now.Add(d).Unix(), nil
	}
	p, err := licensor.ParsePeriod(v)
	if err != nil {
		return 0, fmt.Errorf("%q is neither a duration like 720h nor a period like P90D", v)
	}
	return p.AddTo(now).Unix(), nil
}

// createKey makes a key as licensor keys create does; the answer shows its
// secret once.
func (c *Console) createKey(w http.ResponseWriter, r *http.Request, s *session) error {
	d := keysData{Name: strings.TrimSpace(r.PostFormValue("name")), Scope: r.PostFormValue("scope"),
		Networks: strings.TrimSpace(r.PostFormValue("networks")), Expires: strings.TrimSpace(r.PostFormValue("expires"))}
	fail := func(format string, args ...any) error {
		d.Problem = fmt.Sprintf(format, args...)
		return c.showKeys(w, r, s, http.StatusBadRequest, d)
	}
	if !licensor.ValidKeyName(d.Name) {
		return fail("A key name is 1 to 64 characters of A-Z a-z 0-9 . _ : @ -")
	}
	if !licensor.Scope(d.Scope).Valid() {
		return fail("The scope is read or write.")
	}
	now := c.opts.Now()
	k := licensor.APIKey{Name: d.Name, Scope: licensor.Scope(d.Scope), CreatedAt: now.Unix()}
	for _, f := range strings.FieldsFunc(d.Networks, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' }) {
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil {
				return fail("%q is not a network (10.0.0.0/8) or an address.", f)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		k.Networks = append(k.Networks, p.Masked())
	}
	if d.Expires != "" {
		at, err := lifetime(now, d.Expires)
		if err != nil {
			return fail("%v", err)
		}
		k.ExpiresAt = &at
	}
	secret, prefix, hash := licensor.NewAPIKeySecret()
	k.Prefix, k.Hash = prefix, hash
	if err := c.store.CreateAPIKey(r.Context(), &k); err != nil {
		if licensor.ErrorCode(err) == licensor.CodeConflict {
			return fail("A key named %q is in use: pick another name, rotate it or revoke it first.", d.Name)
		}
		return err
	}
	c.log.Info("console: API key created", "name", k.Name, "prefix", k.Prefix, "scope", string(k.Scope), "key", s.key.Name)
	return c.showKeys(w, r, s, http.StatusOK, keysData{Secret: secret, SecretName: k.Name, Scope: string(licensor.ScopeRead)})
}

// confirmRevokeKey asks before revoking a key: the page of keys with the
// question on top.
func (c *Console) confirmRevokeKey(w http.ResponseWriter, r *http.Request, s *session) error {
	k, err := c.keyOfPrefix(r)
	if err != nil {
		return err
	}
	row := keyRow{*k, keyStatus(k, c.now())}
	if row.Status != "active" && row.Status != "rotating" {
		return licensor.Errorf(licensor.CodeConflict, "the key %s (%s) is %s already", k.Name, k.Prefix, row.Status)
	}
	return c.showKeys(w, r, s, http.StatusOK, keysData{Scope: string(licensor.ScopeRead), Confirm: &row, Self: k.Prefix == s.key.Prefix})
}

func (c *Console) keyOfPrefix(r *http.Request) (*licensor.APIKey, error) {
	prefix := r.PathValue("prefix")
	if _, ok := licensor.APIKeyPrefix(prefix + "_" + strings.Repeat("a", 32)); !ok {
		return nil, licensor.Errorf(licensor.CodeNotFound, "%q is not a key prefix", prefix)
	}
	return c.store.FindAPIKeyByPrefix(r.Context(), prefix)
}

// revokeKey revokes one key by its prefix (the confirmation's form).
func (c *Console) revokeKey(w http.ResponseWriter, r *http.Request, s *session) error {
	prefix := r.PathValue("prefix")
	if _, ok := licensor.APIKeyPrefix(prefix + "_" + strings.Repeat("a", 32)); !ok {
		return licensor.Errorf(licensor.CodeNotFound, "%q is not a key prefix", prefix)
	}
	if err := c.store.RevokeAPIKey(r.Context(), prefix, c.change(s)); err != nil {
		return err
	}
	c.log.Info("console: API key revoked", "prefix", prefix, "key", s.key.Name)
	redirect(w, r, "/keys?done=revoked")
	return nil
}

// rotateKey gives the current key of a name a successor, as licensor keys
// rotate does; the answer shows the new secret once.
func (c *Console) rotateKey(w http.ResponseWriter, r *http.Request, s *session) error {
	name := r.PathValue("name")
	grace, err := time.ParseDuration(r.PostFormValue("grace"))
	if err != nil || grace < 0 {
		return licensor.Errorf(licensor.CodeInvalidParameter, "the grace period is a duration such as 24h")
	}
	secret, prefix, hash := licensor.NewAPIKeySecret()
	next := licensor.APIKey{Prefix: prefix, Hash: hash}
	ch := c.change(s)
	old, err := c.store.RotateAPIKey(r.Context(), name, &next, ch.Time+int64(grace/time.Second), ch)
	if err != nil {
		return err
	}
	c.log.Info("console: API key rotated", "name", name, "old_prefix", old.Prefix, "prefix", next.Prefix, "key", s.key.Name)
	return c.showKeys(w, r, s, http.StatusOK, keysData{Secret: secret, SecretName: name, Scope: string(licensor.ScopeRead)})
}
