package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/webhook"
)

// received is one request a receiver accepted.
type received struct {
	msg webhook.Message
	id  string // webhook-id
	at  time.Time
}

// receiver is a real HTTP endpoint that checks signatures and records
// what it accepts. respond decides each answer from the number of
// requests so far (1 for the first): a status, and a delay before it.
type receiver struct {
	t       *testing.T
	srv     *httptest.Server
	secret  string
	respond func(n int) (status int, delay time.Duration)

	mu       sync.Mutex
	requests int
	accepted []received
	badSigs  int
}

func newReceiver(t *testing.T, respond func(n int) (int, time.Duration)) *receiver {
	r := &receiver{t: t, secret: licensor.NewWebhookSecret(), respond: respond}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

// ok answers 204 at once.
func ok(int) (int, time.Duration) { return http.StatusNoContent, 0 }

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.requests++
	n := r.requests
	if err := webhook.Verify(req.Header, body, r.secret, time.Now()); err != nil {
		r.badSigs++
		r.mu.Unlock()
		r.t.Errorf("receiver: %v", err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	r.mu.Unlock()
	status, delay := r.respond(n)
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-req.Context().Done():
			return
		}
	}
	if status >= 200 && status < 300 {
		var m webhook.Message
		if err := json.Unmarshal(body, &m); err != nil {
			r.t.Errorf("receiver: body is not a message: %v: %s", err, body)
		}
		r.mu.Lock()
		r.accepted = append(r.accepted, received{msg: m, id: req.Header.Get(webhook.HeaderID), at: time.Now()})
		r.mu.Unlock()
	}
	w.WriteHeader(status)
}

func (r *receiver) snapshot() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.accepted)
}

// ids is the set of event ids accepted.
func (r *receiver) ids() map[string]int {
	out := map[string]int{}
	for _, m := range r.snapshot() {
		out[m.msg.EventID]++
	}
	return out
}

// subscribe creates a webhook for r's URL (or url when not empty).
func subscribe(t *testing.T, s licensor.Store, r *receiver, url string) licensor.Webhook {
	t.Helper()
	if url == "" {
		url = r.srv.URL + "/hook"
	}
	w := licensor.Webhook{URL: url, Secret: r.secret}
	if err := s.CreateWebhook(context.Background(), &w, licensor.Change{Time: time.Now().Unix(), Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	return w
}

// loopback is the policy of these tests: http allowed, and the loopback
// receivers allowed by the allow-list (the default refuses them).
var loopback = webhook.Policy{AllowHTTP: true, Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}}

// run starts a dispatcher until the test ends.
func run(t *testing.T, s licensor.Store, opts webhook.Options) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		webhook.New(s, opts).Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// waitFor polls cond until it holds, failing the test after a generous
// deadline (the machine may be slow; nothing here asserts on timing).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// workload makes a product and, for each of n licenses, its creation;
// every second license is deleted again. It returns the events written.
func workload(t *testing.T, s licensor.Store, n int) []licensor.Event {
	t.Helper()
	ctx := context.Background()
	c := func() licensor.Change {
		return licensor.Change{Time: time.Now().Unix(), Actor: "bss", RequestID: "req-" + strconv.Itoa(n)}
	}
	page, err := s.Events(ctx, licensor.EventQuery{Limit: licensor.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	from := page.Next
	p := licensor.NewProduct("Sports")
	if err := s.CreateProduct(ctx, &p, c()); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		ls, err := s.CreateLicenses(ctx, []licensor.LicenseDraft{{UserID: fmt.Sprint("user-", i%3), ProductID: p.ID}}, c())
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if _, _, err := s.DeleteLicenses(ctx, []int64{ls[0].ID}, false, c()); err != nil {
				t.Fatal(err)
			}
		}
	}
	var out []licensor.Event
	for {
		page, err := s.Events(ctx, licensor.EventQuery{After: from, Limit: licensor.MaxPageSize})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page.Events...)
		if len(page.Events) < licensor.MaxPageSize {
			return out
		}
		from = page.Next
	}
}

// checkOrder fails the test unless, for every license (and product), the
// events r accepted never go back in commit order. Duplicates of the last
// one are allowed: delivery is at least once.
func checkOrder(t *testing.T, r *receiver) {
	t.Helper()
	last := map[string]int64{}
	for _, m := range r.snapshot() {
		var res struct {
			ID   string `json:"id"`
			Type string `json:"type"`
		}
		if err := json.Unmarshal(m.msg.Data, &res); err != nil {
			t.Fatalf("data of %s: %v", m.msg.EventID, err)
		}
		key := res.Type + ":" + res.ID
		seq, _ := strconv.ParseInt(m.msg.EventID, 10, 64)
		if seq < last[key] {
			t.Errorf("%s: event %d arrived after event %d", key, seq, last[key])
		}
		last[key] = max(last[key], seq)
		if m.id != "evt_"+m.msg.EventID {
			t.Errorf("webhook-id %q for event %s", m.id, m.msg.EventID)
		}
	}
}

// hasAll reports whether r accepted every event of events.
func hasAll(r *receiver, events []licensor.Event) bool {
	got := r.ids()
	for _, e := range events {
		if got[strconv.FormatInt(e.Seq, 10)] == 0 {
			return false
		}
	}
	return true
}

func TestDelivery(t *testing.T) {
	forEachEngine(t, func(t *testing.T, open func(t *testing.T) licensor.Store) {
		t.Run("SignedCompleteInOrder", func(t *testing.T) {
			t.Parallel()
			s := open(t)
			r := newReceiver(t, ok)
			w := subscribe(t, s, r, "")
			onlyDeletes := newReceiver(t, ok)
			dw := licensor.Webhook{URL: onlyDeletes.srv.URL, Secret: onlyDeletes.secret, EventTypes: []licensor.EventType{licensor.EventLicenseDeleted}}
			if err := s.CreateWebhook(context.Background(), &dw, licensor.Change{Time: time.Now().Unix()}); err != nil {
				t.Fatal(err)
			}
			run(t, s, webhook.Options{Policy: loopback})
			events := workload(t, s, 20)
			waitFor(t, "every event", func() bool { return hasAll(r, events) })
			checkOrder(t, r)
			byID := map[string]licensor.Event{}
			for _, e := range events {
				byID[strconv.FormatInt(e.Seq, 10)] = e
			}
			for _, m := range r.snapshot() {
				e := byID[m.msg.EventID]
				if m.msg.Type != e.Type || string(m.msg.Data) != string(e.Data) || m.msg.Actor != "bss" ||
					m.msg.RequestID != e.RequestID || m.msg.Timestamp != time.Unix(e.Time, 0).UTC().Format(time.RFC3339) {
					t.Errorf("message %+v does not match event %+v", m.msg, e)
				}
			}
			var deletes []licensor.Event
			for _, e := range events {
				if e.Type == licensor.EventLicenseDeleted {
					deletes = append(deletes, e)
				}
			}
			waitFor(t, "the deletions", func() bool { return hasAll(onlyDeletes, deletes) })
			for _, m := range onlyDeletes.snapshot() {
				if m.msg.Type != licensor.EventLicenseDeleted {
					t.Errorf("a license.deleted subscriber got %s", m.msg.Type)
				}
			}
			// The delivery log says delivered, once each.
			waitFor(t, "the log", func() bool {
				page, err := s.FindDeliveries(context.Background(), licensor.DeliveryQuery{WebhookID: w.ID, Limit: 1000})
				if err != nil {
					t.Fatal(err)
				}
				for _, d := range page.Deliveries {
					if d.State != licensor.DeliveryDelivered {
						return false
					}
				}
				return len(page.Deliveries) == len(events)
			})
		})

		t.Run("FailingReceiversCatchUpInOrder", func(t *testing.T) {
			t.Parallel()
			s := open(t)
			// Answers 500 to its first five requests.
			failing := newReceiver(t, func(n int) (int, time.Duration) {
				if n <= 5 {
					return http.StatusInternalServerError, 0
				}
				return http.StatusOK, 0
			})
			// Takes longer than the timeout for its first three.
			slow := newReceiver(t, func(n int) (int, time.Duration) {
				if n <= 3 {
					return http.StatusOK, 3 * time.Second
				}
				return http.StatusOK, 0
			})
			// Refuses connections until it starts listening.
			up := &receiver{t: t, secret: licensor.NewWebhookSecret(), respond: ok}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			downAddr := ln.Addr().String()
			ln.Close()

			hooks := []licensor.Webhook{subscribe(t, s, failing, ""), subscribe(t, s, slow, ""), subscribe(t, s, up, "http://"+downAddr+"/hook")}
			run(t, s, webhook.Options{Policy: loopback, Timeout: 500 * time.Millisecond, MaxBackoff: 2 * time.Second})
			events := workload(t, s, 6)

			// The refusing receiver fails a few attempts, then comes up.
			waitFor(t, "refused attempts", func() bool {
				page, err := s.FindDeliveries(context.Background(), licensor.DeliveryQuery{WebhookID: hooks[2].ID, Limit: 1000})
				if err != nil {
					t.Fatal(err)
				}
				refused := 0
				for _, d := range page.Deliveries {
					if d.Attempts >= 1 && strings.Contains(d.LastError, "refused") {
						refused++
					}
				}
				return refused >= 2
			})
			ln, err = net.Listen("tcp", downAddr)
			if err != nil {
				t.Skipf("the refusing receiver's port was taken meanwhile: %v", err)
			}
			srv := &http.Server{Handler: http.HandlerFunc(up.serve)}
			go srv.Serve(ln)
			t.Cleanup(func() { srv.Close() })

			for name, r := range map[string]*receiver{"500 at first": failing, "slow at first": slow, "refusing at first": up} {
				waitFor(t, name+" receiver to get every event", func() bool { return hasAll(r, events) })
				checkOrder(t, r)
			}
			// The log shows the retries.
			for i, h := range hooks {
				page, err := s.FindDeliveries(context.Background(), licensor.DeliveryQuery{WebhookID: h.ID, Limit: 1000})
				if err != nil {
					t.Fatal(err)
				}
				retried := 0
				for _, d := range page.Deliveries {
					if d.Attempts > 1 {
						retried++
					}
				}
				if retried == 0 {
					t.Errorf("webhook %d: no delivery was retried: %+v", i, page.Deliveries)
				}
			}
		})

		t.Run("InternalAddressesRefused", func(t *testing.T) {
			t.Parallel()
			s := open(t)
			r := newReceiver(t, ok)
			_, port, _ := net.SplitHostPort(r.srv.Listener.Addr().String())
			// By address, and by a name that resolves to loopback: the
			// check is made on the address dialled.
			byAddr := subscribe(t, s, r, r.srv.URL)
			byName := subscribe(t, s, r, "http://localhost:"+port+"/hook")
			run(t, s, webhook.Options{Policy: webhook.Policy{AllowHTTP: true}, MaxAge: time.Nanosecond})
			workload(t, s, 1)
			for _, h := range []licensor.Webhook{byAddr, byName} {
				waitFor(t, "refused deliveries to fail", func() bool {
					page, err := s.FindDeliveries(context.Background(), licensor.DeliveryQuery{WebhookID: h.ID, Limit: 100})
					if err != nil {
						t.Fatal(err)
					}
					for _, d := range page.Deliveries {
						if d.State != licensor.DeliveryFailed {
							return false
						}
						if !strings.Contains(d.LastError, "may not reach") {
							t.Fatalf("delivery failed for another reason: %q", d.LastError)
						}
					}
					return len(page.Deliveries) > 0
				})
			}
			if n := len(r.snapshot()); n != 0 {
				t.Errorf("the internal receiver got %d requests", n)
			}
		})

		t.Run("LastErrorSanitized", func(t *testing.T) {
			t.Parallel()
			s := open(t)
			// A listener that hangs up on every connection.
			hangup, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { hangup.Close() })
			go func() {
				for {
					c, err := hangup.Accept()
					if err != nil {
						return
					}
					c.Close()
				}
			}()
			failing := newReceiver(t, func(int) (int, time.Duration) { return http.StatusInternalServerError, 0 })
			hanging := newReceiver(t, func(int) (int, time.Duration) { return http.StatusOK, 5 * time.Second })
			tlsSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
			tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0)
			tlsSrv.StartTLS()
			t.Cleanup(tlsSrv.Close)
			plain := newReceiver(t, ok)
			// A port nothing listens on, freed only once the receivers
			// above hold theirs: freed before, the kernel handed it to
			// one of them (a 401 where "connection refused" was meant).
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			closedPort := ln.Addr().String()
			ln.Close()
			cases := []struct {
				url    string
				want   []string // one of
				secret string
			}{
				{"http://" + closedPort + "/hook", []string{"connection refused"}, ""},
				{failing.srv.URL + "/hook", []string{"HTTP 500"}, failing.secret},
				{hanging.srv.URL + "/hook", []string{"timeout after 2s"}, hanging.secret},
				{"http://" + hangup.Addr().String() + "/hook", []string{"connection closed by the receiver before it answered", "connection reset by the receiver"}, ""},
				{tlsSrv.URL + "/hook", []string{"TLS certificate not trusted"}, ""},
				{"https://" + plain.srv.Listener.Addr().String() + "/hook", []string{"TLS handshake failed: the receiver does not speak TLS"}, ""},
				// What the resolver says depends on the machine's DNS.
				{"http://licensor-test.invalid/hook", []string{"host not found", "DNS lookup failed", "timeout after 2s (DNS lookup)"}, ""},
			}
			var hooks []licensor.Webhook
			for _, c := range cases {
				if c.secret == "" {
					c.secret = licensor.NewWebhookSecret()
				}
				w := licensor.Webhook{URL: c.url, Secret: c.secret, EventTypes: []licensor.EventType{licensor.EventProductCreated}}
				if err := s.CreateWebhook(context.Background(), &w, licensor.Change{Time: time.Now().Unix()}); err != nil {
					t.Fatal(err)
				}
				hooks = append(hooks, w)
			}
			// 2s: under load a TLS handshake to the local receivers took over 500ms and read as a timeout.
			run(t, s, webhook.Options{Policy: webhook.Policy{AllowHTTP: true, AllowPrivate: true}, Timeout: 2 * time.Second, MaxAge: time.Nanosecond})
			workload(t, s, 0)
			for i, h := range hooks {
				var d licensor.Delivery
				waitFor(t, "the delivery to "+cases[i].url+" to fail", func() bool {
					page, err := s.FindDeliveries(context.Background(), licensor.DeliveryQuery{WebhookID: h.ID, Limit: 10})
					if err != nil {
						t.Fatal(err)
					}
					if len(page.Deliveries) != 1 || page.Deliveries[0].State != licensor.DeliveryFailed {
						return false
					}
					d = page.Deliveries[0]
					return true
				})
				if !slices.Contains(cases[i].want, d.LastError) {
					t.Errorf("%s: last_error %q, want one of %q", cases[i].url, d.LastError, cases[i].want)
				}
				for _, leak := range []string{"127.0.0.1", "10.", ":53", "dial", "lookup", "Post ", "tcp", "x509", "tls:"} {
					if strings.Contains(d.LastError, leak) {
						t.Errorf("%s: last_error %q shows %q", cases[i].url, d.LastError, leak)
					}
				}
			}
		})

		t.Run("MaxAgeThenNext", func(t *testing.T) {
			t.Parallel()
			s := open(t)
			r := newReceiver(t, func(int) (int, time.Duration) { return http.StatusServiceUnavailable, 0 })
			w := subscribe(t, s, r, "")
			run(t, s, webhook.Options{Policy: loopback, MaxAge: time.Second})
			events := workload(t, s, 1) // product.created, license.created, license.deleted
			waitFor(t, "every delivery to fail for good", func() bool {
				page, err := s.FindDeliveries(context.Background(), licensor.DeliveryQuery{WebhookID: w.ID, Limit: 100})
				if err != nil {
					t.Fatal(err)
				}
				for _, d := range page.Deliveries {
					if d.State != licensor.DeliveryFailed {
						return false
					}
				}
				return len(page.Deliveries) == len(events)
			})
			page, _ := s.FindDeliveries(context.Background(), licensor.DeliveryQuery{WebhookID: w.ID, Limit: 100})
			for _, d := range page.Deliveries {
				if d.Attempts < 1 || d.LastStatus == nil || *d.LastStatus != http.StatusServiceUnavailable {
					t.Errorf("failed delivery: %+v", d)
				}
			}
		})

		t.Run("TwoDispatchers", func(t *testing.T) {
			t.Parallel()
			s := open(t)
			r := newReceiver(t, ok)
			subscribe(t, s, r, "")
			run(t, s, webhook.Options{Policy: loopback, Concurrency: 4})
			run(t, s, webhook.Options{Policy: loopback, Concurrency: 4})
			events := workload(t, s, 40)
			waitFor(t, "every event", func() bool { return hasAll(r, events) })
			checkOrder(t, r)
			dups := 0
			for _, n := range r.ids() {
				dups += n - 1
			}
			t.Logf("%d events, %d duplicate deliveries", len(events), dups)
		})
	})
}

// TestMeasureDeliveryLatency logs the delivery latency, from the return of
// the write to the arrival at the receiver, at p50 and p99. It asserts
// nothing about the figures.
//
//	go test -run TestMeasureDeliveryLatency -v ./internal/webhook
func TestMeasureDeliveryLatency(t *testing.T) {
	forEachEngine(t, func(t *testing.T, open func(t *testing.T) licensor.Store) {
		s := open(t)
		r := newReceiver(t, ok)
		subscribe(t, s, r, "")
		run(t, s, webhook.Options{Policy: loopback})
		ctx := context.Background()
		p := licensor.NewProduct("Latency")
		if err := s.CreateProduct(ctx, &p, licensor.Change{Time: time.Now().Unix()}); err != nil {
			t.Fatal(err)
		}
		const n = 300
		committed := map[string]time.Time{}
		var mu sync.Mutex
		for i := range n {
			ls, err := s.CreateLicenses(ctx, []licensor.LicenseDraft{{UserID: fmt.Sprint("u", i), ProductID: p.ID}}, licensor.Change{Time: time.Now().Unix()})
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			committed[strconv.FormatInt(ls[0].ID, 10)] = time.Now()
			mu.Unlock()
			time.Sleep(5 * time.Millisecond) // a steady stream, not a burst
		}
		waitFor(t, "every delivery", func() bool { return len(r.ids()) >= n+1 })
		var lat []time.Duration
		for _, m := range r.snapshot() {
			if m.msg.Type != licensor.EventLicenseCreated {
				continue
			}
			var res struct {
				ID string `json:"id"`
			}
			_ = json.Unmarshal(m.msg.Data, &res)
			lat = append(lat, m.at.Sub(committed[res.ID]))
		}
		slices.Sort(lat)
		pct := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
		t.Logf("%s: delivery latency over %d deliveries: p50 %v, p99 %v, max %v", t.Name(), len(lat), pct(0.50), pct(0.99), lat[len(lat)-1])
	})
}
