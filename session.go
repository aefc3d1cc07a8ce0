package licensor

// ConsoleSession is a signed-in session of the operator console
// (internal/console): the browser holds a random token in a cookie, the
// store holds its hash, the key it was opened with and its CSRF token.
// Every instance over the same database honours it, and none may use it
// once its key no longer works (the console checks the key on every
// request).
type ConsoleSession struct {
	ID        string // hex SHA-256 of the cookie's token; the token itself is never stored
	KeyID     int64
	KeyPrefix string // of the key; looked up on every request
	CSRF      string // the token every form of the session carries
	CreatedAt int64
	SeenAt    int64 // the last request, for the idle expiry
	ExpiresAt int64 // the absolute expiry
}
