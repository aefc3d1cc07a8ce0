package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path"
	"strconv"
	"sync"
	"sync/atomic"
)

const apiPath = "/api/license/management/v4"

// workload builds the requests of the scenarios against one seeded server.
type workload struct {
	base     string // http://host:port
	api      string // base + apiPath
	users    int64  // seeded user ids are "1" .. users
	products int64  // seeded product ids are 1 .. products
	licenses int64  // seeded license ids are 1 .. licenses
	now      int64  // unix time of the seed
	tag      string // makes this run's order ids unique
	orders   atomic.Int64
}

func (wl *workload) user(w *worker) string {
	return strconv.FormatInt(1+w.rng.Int64N(wl.users), 10)
}

func (wl *workload) product(w *worker) int64 { return 1 + w.rng.Int64N(wl.products) }

func (wl *workload) getByID(w *worker) call {
	id := 1 + w.rng.Int64N(wl.licenses)
	return call{method: "GET", url: wl.api + "/licenses/" + strconv.FormatInt(id, 10), want: 200}
}

func (wl *workload) getByUser(w *worker) call {
	return call{method: "GET", url: wl.api + "/users/" + wl.user(w) + "/licenses", want: 200}
}

func (wl *workload) listUserStatus(w *worker) call {
	return call{method: "GET", url: wl.api + "/licenses?filter[user_id]=" + wl.user(w) + "&filter[status]=ACTIVE", want: 200}
}

func (wl *workload) listProduct(w *worker) call {
	return call{method: "GET", url: wl.api + "/licenses?filter[product_id]=" + strconv.FormatInt(wl.product(w), 10), want: 200}
}

// listRange asks for the ACTIVE licenses ending in a week-long window
// starting somewhere in the next six months, soonest first: "who must
// renew soon".
func (wl *workload) listRange(w *worker) call {
	from := wl.now + w.rng.Int64N(180*86400)
	return call{method: "GET", url: fmt.Sprintf("%s/licenses?filter[status]=ACTIVE&filter[stop_date][gte]=%d&filter[stop_date][lt]=%d&sort=stop_date",
		wl.api, from, from+7*86400), want: 200}
}

func (wl *workload) getProduct(w *worker) call {
	return call{method: "GET", url: wl.api + "/products/" + strconv.FormatInt(wl.product(w), 10), want: 200}
}

// orderID returns an order id no other request of this run uses.
func (wl *workload) orderID() string {
	return "bench-" + wl.tag + "-" + strconv.FormatInt(wl.orders.Add(1), 10)
}

func (wl *workload) licenseItem(b []byte, w *worker) []byte {
	return fmt.Appendf(b, `{"type":"License","attributes":{"order_id":%q,"purchase_record":{"payment_method":"credit_card"}},`+
		`"relationships":{"user":{"data":{"type":"User","id":%q}},"product":{"data":{"type":"Product","id":"%d"}}}}`,
		wl.orderID(), wl.user(w), wl.product(w))
}

// create is a CreateLicense; done, if set, gets the new license's id.
func (wl *workload) create(w *worker, done func(id int64)) call {
	b := wl.licenseItem([]byte(`{"data":`), w)
	b = append(b, '}')
	c := call{method: "POST", url: wl.api + "/licenses", body: b, want: 201}
	if done != nil {
		c.done = func(resp *http.Response, _ []byte) {
			if id, err := strconv.ParseInt(path.Base(resp.Header.Get("Location")), 10, 64); err == nil {
				done(id)
			}
		}
	}
	return c
}

func (wl *workload) batchCreate(w *worker, n int) call {
	b := make([]byte, 0, n*300)
	b = append(b, `{"data":[`...)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = wl.licenseItem(b, w)
	}
	b = append(b, "]}"...)
	return call{method: "POST", url: wl.api + "/licenses/batch_create", body: b, want: 201, rows: n}
}

func (wl *workload) batchDelete(ids []int64) call {
	b := make([]byte, 0, len(ids)*40)
	b = append(b, `{"data":[`...)
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, `{"type":"License","id":"%d"}`, id)
	}
	b = append(b, "]}"...)
	return call{method: "POST", url: wl.api + "/licenses/batch_delete", body: b, want: 200, rows: len(ids)}
}

func (wl *workload) deleteByID(id int64) call {
	return call{method: "DELETE", url: wl.api + "/licenses/" + strconv.FormatInt(id, 10), want: 204}
}

func (wl *workload) entitlements(w *worker) call {
	return call{method: "GET", url: wl.api + "/users/" + wl.user(w) + "/entitlements", want: 200}
}

// hotUsers is how many users are watching at a time in the warm variant
// of the entitlement check: their checks repeat, as playback checks do.
const hotUsers = 10_000

// entitlementsHot asks for the entitlements of one of the first hotUsers
// users (spread over the id space like any other users).
func (wl *workload) entitlementsHot(w *worker) call {
	n := min(wl.users, hotUsers)
	u := 1 + w.rng.Int64N(n)*(wl.users/n)
	return call{method: "GET", url: wl.api + "/users/" + strconv.FormatInt(u, 10) + "/entitlements", want: 200}
}

// checkBatch asks n questions "may user U watch channel C on service S
// now" in one request.
func (wl *workload) checkBatch(w *worker, n int) call {
	services := []string{"live", "live", "live", "catchup", "npvr", "startover"}
	b := make([]byte, 0, n*80)
	b = append(b, `{"data":[`...)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, `{"type":"EntitlementCheck","attributes":{"user_id":%q,"channel_id":"ch-%03d","service":%q}}`,
			wl.user(w), w.rng.IntN(400), services[w.rng.IntN(len(services))])
	}
	b = append(b, "]}"...)
	return call{method: "POST", url: wl.api + "/entitlements/check", body: b, want: 200, rows: n}
}

// idPool hands out ids to delete, in batches, until it runs out.
type idPool struct {
	mu   sync.Mutex
	next int64 // next id to hand out
	last int64 // last id of the pool
}

func (p *idPool) take(n int) []int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next > p.last {
		return nil
	}
	end := min(p.next+int64(n)-1, p.last)
	ids := make([]int64, 0, end-p.next+1)
	for id := p.next; id <= end; id++ {
		ids = append(ids, id)
	}
	p.next = end + 1
	return ids
}

// idStack holds the ids of licenses a scenario created, for it to delete.
type idStack struct {
	mu  sync.Mutex
	ids []int64
}

func (s *idStack) push(id int64) {
	s.mu.Lock()
	s.ids = append(s.ids, id)
	s.mu.Unlock()
}

func (s *idStack) pop() (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ids) == 0 {
		return 0, false
	}
	id := s.ids[len(s.ids)-1]
	s.ids = s.ids[:len(s.ids)-1]
	return id, true
}

// mixed is a BSS-like mix: 90 % reads (by user 30 %, by id 25 %, user
// filter 10 %, product filter 10 %, renewal window 10 %, product 5 %) and
// 10 % writes (create 7 %, delete one of the licenses created here 3 %).
func (wl *workload) mixed(created *idStack) func(w *worker) (call, bool) {
	return func(w *worker) (call, bool) {
		switch n := w.rng.IntN(100); {
		case n < 30:
			return wl.getByUser(w), true
		case n < 55:
			return wl.getByID(w), true
		case n < 65:
			return wl.listUserStatus(w), true
		case n < 75:
			return wl.listProduct(w), true
		case n < 85:
			return wl.listRange(w), true
		case n < 90:
			return wl.getProduct(w), true
		case n < 97:
			return wl.create(w, created.push), true
		default:
			if id, ok := created.pop(); ok {
				return wl.deleteByID(id), true
			}
			return wl.create(w, created.push), true
		}
	}
}

// deepPages follows links.next from each start URL for depth pages, then
// collects the URLs of the next keep pages: the deep pages a scenario then
// requests. A walk that ends before the depth contributes its last page.
// It reports the shallowest depth (in pages skipped) of the collected URLs.
func deepPages(ctx context.Context, client *http.Client, header http.Header, base string, starts []string, depth, keep int) (urls []string, reached int, err error) {
	reached = depth
	for _, start := range starts {
		u := start
		for page := 0; page < depth+keep; page++ {
			if page >= depth {
				urls = append(urls, u)
			}
			next, err := nextLink(ctx, client, header, u)
			if err != nil {
				return nil, 0, err
			}
			if next == "" {
				if page < depth {
					urls = append(urls, u)
					reached = min(reached, page)
				}
				break
			}
			u = base + next
		}
	}
	return urls, reached, nil
}

// nextLink GETs u and returns its links.next ("" on the last page).
func nextLink(ctx context.Context, client *http.Client, header http.Header, u string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return "", err
	}
	req.Header = header.Clone()
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("GET %s: status %d: %s", trimURL(u), resp.StatusCode, truncate(string(b), 200))
	}
	var doc struct {
		Links struct {
			Next string `json:"next"`
		} `json:"links"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return "", fmt.Errorf("GET %s: %w", trimURL(u), err)
	}
	return doc.Links.Next, nil
}

// probe sends one request and returns its status and body.
func probe(ctx context.Context, client *http.Client, header http.Header, c call) (int, string, error) {
	var body io.Reader
	if c.body != nil {
		body = bytes.NewReader(c.body)
	}
	req, err := http.NewRequestWithContext(ctx, c.method, c.url, body)
	if err != nil {
		return 0, "", err
	}
	req.Header = header.Clone()
	if c.body != nil {
		req.Header.Set("Content-Type", "application/vnd.api+json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// routeMissing reports whether a 404 answer is the router's "no such
// route" (code NOT_FOUND) rather than a missing resource.
func routeMissing(status int, body string) bool {
	if status == http.StatusMethodNotAllowed {
		return true
	}
	if status != http.StatusNotFound {
		return false
	}
	var doc struct {
		Errors []struct {
			Code string `json:"code"`
		} `json:"errors"`
	}
	if json.Unmarshal([]byte(body), &doc) != nil || len(doc.Errors) == 0 {
		return true
	}
	return doc.Errors[0].Code == "NOT_FOUND"
}
