package faulttest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// race sends n requests at once, spread over the servers in turn, and
// returns the results in order.
func race(n int, servers []*server, send func(i int, s *server) result) []result {
	results := make([]result, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i] = send(i, servers[i%len(servers)])
		}()
	}
	close(start)
	wg.Wait()
	return results
}

// licenseCount counts the live licenses with an order id through the API.
func licenseCount(t *testing.T, s *server, key, orderID string) float64 {
	t.Helper()
	r := mustCall(t, 200, "GET", s.url+base+"/licenses?count=true&filter[order_id]="+orderID, key, nil, nil)
	var doc struct {
		Meta struct {
			Total float64 `json:"total"`
		} `json:"meta"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Meta.Total
}

// TestTwoInstancesIdempotencyKey runs two server processes on one database
// (PostgreSQL, and SQLite: two processes on one file) and sends 50
// concurrent requests spread over both: with one Idempotency-Key exactly
// one write happens and every other answer is a replay of it or 409
// IDEMPOTENCY_KEY_IN_FLIGHT; with one order_id and no key exactly one
// license is created and the 49 others get 409 ORDER_ID_CONFLICT naming it.
func TestTwoInstancesIdempotencyKey(t *testing.T) {
	const n = 50
	forEachEngine(t, func(t *testing.T, e engine) {
		db := e.newDB(t)
		key := createKey(t, db, "bss", "write")
		a, b := startServer(t, db), startServer(t, db)
		product := createProduct(t, a, key)
		servers := []*server{a, b}

		t.Run("idempotency key", func(t *testing.T) {
			body := []byte(`{"data":` + licenseJSON("u1", product, "idem-order") + `}`)
			results := race(n, servers, func(i int, s *server) result {
				return call(context.Background(), "POST", s.url+base+"/licenses", key, body, map[string]string{"Idempotency-Key": "one-key"})
			})
			var created []byte
			var fresh, replays, inFlight int
			for _, r := range results {
				switch {
				case r.err != nil:
					t.Fatalf("request failed: %v", r.err)
				case r.status == 201 && r.header.Get("Idempotent-Replayed") == "":
					fresh++
					created = r.body
				case r.status == 201:
					replays++
				case r.status == 409 && slices.Equal(r.codes(), []string{"IDEMPOTENCY_KEY_IN_FLIGHT"}):
					inFlight++
				default:
					t.Errorf("answer %s", r)
				}
			}
			if fresh != 1 {
				t.Fatalf("%d requests wrote under one Idempotency-Key, want 1", fresh)
			}
			for _, r := range results {
				if r.status == 201 && string(r.body) != string(created) {
					t.Errorf("a replay differs from the write's response:\n%s\n%s", r.body, created)
				}
			}
			// Afterwards both instances replay it.
			for _, s := range servers {
				r := mustCall(t, 201, "POST", s.url+base+"/licenses", key, body, map[string]string{"Idempotency-Key": "one-key"})
				if r.header.Get("Idempotent-Replayed") != "true" || string(r.body) != string(created) {
					t.Errorf("a later repeat is not the replay: %s", r)
				}
			}
			if got := licenseCount(t, b, key, "idem-order"); got != 1 {
				t.Errorf("%v licenses with the order id, want 1", got)
			}
			t.Logf("%s, one Idempotency-Key, %d requests over 2 instances: %d write, %d replays, %d × 409 IDEMPOTENCY_KEY_IN_FLIGHT", e.name, n, fresh, replays, inFlight)
		})

		t.Run("order id", func(t *testing.T) {
			results := race(n, servers, func(i int, s *server) result {
				body := []byte(`{"data":` + licenseJSON(fmt.Sprint("u", i), product, "race-order") + `}`)
				return call(context.Background(), "POST", s.url+base+"/licenses", key, body, nil)
			})
			var winner string
			for _, r := range results {
				if r.err == nil && r.status == 201 {
					if winner != "" {
						t.Fatalf("two creates of one order_id succeeded")
					}
					var doc struct {
						Data struct {
							ID string `json:"id"`
						} `json:"data"`
					}
					_ = json.Unmarshal(r.body, &doc)
					winner = doc.Data.ID
				}
			}
			if winner == "" {
				t.Fatalf("no create succeeded: %v", results[0])
			}
			conflicts := 0
			for _, r := range results {
				if r.status == 201 {
					continue
				}
				var doc struct {
					Errors []struct {
						Code string         `json:"code"`
						Meta map[string]any `json:"meta"`
					} `json:"errors"`
				}
				_ = json.Unmarshal(r.body, &doc)
				if r.status != 409 || len(doc.Errors) != 1 || doc.Errors[0].Code != "ORDER_ID_CONFLICT" || doc.Errors[0].Meta["existing_id"] != winner {
					t.Errorf("loser got %s, want 409 ORDER_ID_CONFLICT with existing_id %s", r, winner)
					continue
				}
				conflicts++
			}
			if got := licenseCount(t, a, key, "race-order"); got != 1 {
				t.Errorf("%v licenses with the order id, want 1", got)
			}
			t.Logf("%s, one order_id, %d creates over 2 instances: 1 created, %d × 409 ORDER_ID_CONFLICT naming it", e.name, n, conflicts)
		})
	})
}

// TestRevocationAcrossInstances revokes a key with the CLI while two
// instances serve it (their key caches warm): any request sent one second
// after the revocation committed must be refused by both, 401
// API_KEY_REVOKED.
func TestRevocationAcrossInstances(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		db := e.newDB(t)
		key := createKey(t, db, "bss", "read")
		servers := []*server{startServer(t, db), startServer(t, db)}

		type probe struct {
			sent time.Time
			r    result
		}
		var (
			mu     sync.Mutex
			probes = make([][]probe, len(servers))
			wg     sync.WaitGroup
		)
		ctx, cancel := context.WithCancel(context.Background())
		for i, s := range servers {
			mustCall(t, 200, "GET", s.url+base+"/products", key, nil, nil)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					sent := time.Now()
					r := call(ctx, "GET", s.url+base+"/products", key, nil, nil)
					if ctx.Err() != nil {
						return
					}
					mu.Lock()
					probes[i] = append(probes[i], probe{sent, r})
					mu.Unlock()
					time.Sleep(10 * time.Millisecond)
				}
			}()
		}
		time.Sleep(300 * time.Millisecond)
		if _, err := cli(t, db, "keys", "revoke", "bss"); err != nil {
			t.Fatal(err)
		}
		revoked := time.Now() // the revocation has committed
		time.Sleep(time.Second + 300*time.Millisecond)
		cancel()
		wg.Wait()

		// Sent a second after the commit: refused, whatever the latency.
		for i, s := range servers {
			r := call(context.Background(), "GET", s.url+base+"/products", key, nil, nil)
			if r.status != 401 || !slices.Equal(r.codes(), []string{"API_KEY_REVOKED"}) {
				t.Errorf("instance %d, %v after the revocation: %s, want 401 API_KEY_REVOKED", i, time.Since(revoked), r)
			}
		}
		for i := range servers {
			var lastOK, firstRefused time.Duration = -1, -1
			for _, p := range probes[i] {
				at := p.sent.Sub(revoked)
				switch {
				case p.r.status == 200:
					lastOK = at
					if at >= time.Second {
						t.Errorf("instance %d accepted the revoked key in a request sent %v after the revocation", i, at)
					}
				case p.r.status == 401 && slices.Equal(p.r.codes(), []string{"API_KEY_REVOKED"}):
					if firstRefused < 0 {
						firstRefused = at
					}
				default:
					t.Errorf("instance %d: %s", i, p.r)
				}
			}
			if firstRefused < 0 {
				t.Errorf("instance %d never refused the revoked key", i)
			}
			t.Logf("%s instance %d: %d probes; last accepted request sent %v after the revocation committed (negative: before), first refused sent %v after",
				e.name, i, len(probes[i]), lastOK.Round(time.Millisecond), firstRefused.Round(time.Millisecond))
		}
	})
}
