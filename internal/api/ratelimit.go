package api

import (
	"net/http"
)

// limitRate spends one token of the API key's bucket per request
// (Options.RateLimit).
func (s *Server) limitRate(next http.Handler) http.Handler {
	if s.limiter == nil {
		return next
	}
	return s.adapt(func(w http.ResponseWriter, r *http.Request) error {
		if err := s.limiter.Spend(w, infoOf(r).keyID); err != nil {
			return err
		}
		next.ServeHTTP(w, r)
		return nil
	})
}

// limitUserRate spends one token of the end user's bucket (the token's
// subject) per request (Options.UserRateLimit), before the body is read.
func (s *Server) limitUserRate(next http.Handler) http.Handler {
	if s.userLimiter == nil {
		return next
	}
	return s.adapt(func(w http.ResponseWriter, r *http.Request) error {
		if err := s.userLimiter.Spend(w, claimsOf(r).Subject); err != nil {
			return err
		}
		next.ServeHTTP(w, r)
		return nil
	})
}
