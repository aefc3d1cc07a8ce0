package console

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/licensor/licensor"
)

// Cookies. The session cookie holds a random token whose hash is the
// stored session's id; the pre-session cookie carries the sign-in form's
// CSRF token (double submit).
const (
	sessionCookie = "licensor_console"
	signinCookie  = "licensor_console_signin"
)

// session is a signed-in request's session and key.
type session struct {
	licensor.ConsoleSession
	key *licensor.APIKey
}

// CanWrite reports whether the session's key may change things.
func (s *session) CanWrite() bool { return s.key.Scope.Covers(licensor.ScopeWrite) }

// KeyName is the signed-in key's name.
func (s *session) KeyName() string { return s.key.Name }

func tokenID(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

func setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: Prefix, MaxAge: maxAge,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
}

func peerAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// lookup returns the request's session, or nil when it has none that is
// still good: unknown, idle too long, too old, or its key revoked, expired
// or not allowed from this address. The key is read from the store on every
// request, so a revoked key's sessions stop at once, on every instance.
func (c *Console) lookup(r *http.Request) (*session, error) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil || ck.Value == "" {
		return nil, nil
	}
	id := tokenID(ck.Value)
	cs, err := c.store.FindConsoleSession(r.Context(), id)
	if licensor.ErrorCode(err) == licensor.CodeNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	now := c.now()
	if cs.ExpiresAt <= now || cs.SeenAt <= now-int64(c.opts.IdleTimeout/time.Second) {
		_ = c.store.DeleteConsoleSession(r.Context(), id)
		return nil, nil
	}
	key, err := c.store.FindAPIKeyByPrefix(r.Context(), cs.KeyPrefix)
	if licensor.ErrorCode(err) == licensor.CodeAPIKeyInvalid {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if key.ID != cs.KeyID || key.Usable(now) != nil || !key.AllowsAddr(peerAddr(r)) {
		_ = c.store.DeleteConsoleSession(r.Context(), id)
		return nil, nil
	}
	// The idle clock moves in steps of a minute (or a tenth of the idle
	// timeout), not a write per request.
	if step := min(60, int64(c.opts.IdleTimeout/time.Second)/10); now-cs.SeenAt >= step {
		if err := c.store.TouchConsoleSession(r.Context(), id, now); err != nil {
			return nil, err
		}
		cs.SeenAt = now
	}
	return &session{ConsoleSession: *cs, key: key}, nil
}

// authed admits a request with a good session: a page request without one
// goes to the sign-in page. Every POST must carry the session's CSRF token
// and, unless read is set, come from a key whose scope allows writes.
func (c *Console) authed(write bool, h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, err := c.lookup(r)
		if err != nil {
			c.errorPage(w, r, nil, err)
			return
		}
		if s == nil {
			if _, had := r.Cookie(sessionCookie); had == nil {
				setCookie(w, r, sessionCookie, "", -1)
				redirect(w, r, "/signin?done=expired")
				return
			}
			redirect(w, r, "/signin")
			return
		}
		if r.Method == http.MethodPost {
			if subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(s.CSRF)) != 1 {
				c.render(w, r, http.StatusForbidden, "error", s, page{Title: "Forbidden",
					Error: "The form was out of date or did not come from this console (its CSRF token did not match). Go back, reload and try again."})
				return
			}
		}
		if write && !s.CanWrite() {
			c.errorPage(w, r, s, licensor.Errorf(licensor.CodeInsufficientScope,
				"the API key %q has scope %s; this needs a write key", s.key.Name, s.key.Scope))
			return
		}
		if err := h(w, r, s); err != nil {
			c.errorPage(w, r, s, err)
		}
	}
}

type signinData struct {
	Token string
}

// signinForm shows the sign-in form with a fresh CSRF token.
func (c *Console) signinForm(w http.ResponseWriter, r *http.Request) {
	if s, err := c.lookup(r); err == nil && s != nil {
		redirect(w, r, "/")
		return
	}
	c.showSignin(w, r, http.StatusOK, "")
}

func (c *Console) showSignin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	token := randomHex(16)
	setCookie(w, r, signinCookie, token, 600)
	c.render(w, r, status, "signin", nil, page{Title: "Sign in", Error: msg, CSRF: token, Data: signinData{Token: token}})
}

// signin turns an API key into a session. Every failure says the same,
// so that the form tells nothing about which keys exist.
func (c *Console) signin(w http.ResponseWriter, r *http.Request) {
	ck, err := r.Cookie(signinCookie)
	if err != nil || ck.Value == "" || subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(ck.Value)) != 1 {
		c.showSignin(w, r, http.StatusForbidden, "The sign-in form was out of date (its CSRF token did not match). Try again.")
		return
	}
	secret := strings.TrimSpace(r.PostFormValue("key"))
	key, ok := c.verify(r, secret)
	if !ok {
		c.log.Info("console: sign-in refused", "addr", peerAddr(r).String())
		c.showSignin(w, r, http.StatusUnauthorized, "That API key is not valid: unknown, revoked, expired, or not allowed from this address.")
		return
	}
	now := c.now()
	if _, err := c.store.PruneConsoleSessions(r.Context(), now, now-int64(c.opts.IdleTimeout/time.Second)); err != nil {
		c.log.Warn("console: prune sessions", "err", err)
	}
	token := randomHex(32)
	cs := licensor.ConsoleSession{ID: tokenID(token), KeyID: key.ID, KeyPrefix: key.Prefix, CSRF: randomHex(32),
		CreatedAt: now, SeenAt: now, ExpiresAt: now + int64(c.opts.MaxAge/time.Second)}
	if err := c.store.CreateConsoleSession(r.Context(), &cs); err != nil {
		c.errorPage(w, r, nil, err)
		return
	}
	c.log.Info("console: signed in", "key", key.Name)
	setCookie(w, r, signinCookie, "", -1)
	setCookie(w, r, sessionCookie, token, int(c.opts.MaxAge/time.Second))
	redirect(w, r, "/")
}

func (c *Console) verify(r *http.Request, secret string) (*licensor.APIKey, bool) {
	prefix, ok := licensor.APIKeyPrefix(secret)
	if !ok {
		return nil, false
	}
	key, err := c.store.FindAPIKeyByPrefix(r.Context(), prefix)
	if err != nil {
		return nil, false
	}
	if !key.Matches(secret) || key.Usable(c.now()) != nil || !key.AllowsAddr(peerAddr(r)) {
		return nil, false
	}
	return key, true
}

// signout ends the session.
func (c *Console) signout(w http.ResponseWriter, r *http.Request, s *session) error {
	if err := c.store.DeleteConsoleSession(r.Context(), s.ID); err != nil {
		return err
	}
	setCookie(w, r, sessionCookie, "", -1)
	redirect(w, r, "/signin?done=signedout")
	return nil
}

// KeyScope is the signed-in key's scope.
func (s *session) KeyScope() licensor.Scope { return s.key.Scope }
