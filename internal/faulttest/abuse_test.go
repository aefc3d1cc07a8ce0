package faulttest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Sizes of the abuse and its bounds. The bound on a normal request is
// generous on purpose: the property is that others are not starved, not a
// latency target.
const (
	abuseFor          = 8 * time.Second // how long the abuse lasts
	slowHeaderClients = 50              // headers at one byte a second
	slowBodyClients   = 20              // bodies at one byte a second, with a valid key
	idleConns         = 2000            // connections that never send a byte
	keepAliveConns    = 1000            // connections idle after one request
	maxNormalAnswer   = 5 * time.Second // a normal request during the abuse is answered within this
)

// TestAbusiveClients runs slow clients (a byte a second, in the headers and
// in the body), huge headers, huge bodies (declared and streamed) and
// thousands of idle connections against one server, while a normal client
// lists and creates licenses. Every normal request must be answered
// correctly and without starving; the abusers get 431 and 413, and the slow
// header writers are cut off by --read-header-timeout.
func TestAbusiveClients(t *testing.T) {
	db := engines(t)[0].newDB(t)
	key := createKey(t, db, "bss", "write")
	srv := startServer(t, db) // the default --read-header-timeout of 5s
	product := createProduct(t, srv, key)
	u, _ := url.Parse(srv.url)
	addr := u.Host

	ctx, cancel := context.WithTimeout(context.Background(), abuseFor)
	defer cancel()
	var (
		wg                          sync.WaitGroup
		headerCut, headerOpen       atomic.Int64
		tooLarge431, tooLarge413    atomic.Int64
		idleOpened, keepAliveOpened atomic.Int64
		unexpectedMu                sync.Mutex
		unexpected                  []string
		conns                       []net.Conn
		connsMu                     sync.Mutex
	)
	oops := func(format string, args ...any) {
		unexpectedMu.Lock()
		defer unexpectedMu.Unlock()
		if len(unexpected) < 10 {
			unexpected = append(unexpected, fmt.Sprintf(format, args...))
		}
	}
	keep := func(c net.Conn) {
		connsMu.Lock()
		conns = append(conns, c)
		connsMu.Unlock()
	}
	defer func() {
		connsMu.Lock()
		for _, c := range conns {
			c.Close()
		}
		connsMu.Unlock()
	}()

	// Thousands of idle connections: some never send a byte, some stay
	// open after one request (keep-alive).
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range idleConns {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				oops("idle connection: %v", err)
				return
			}
			keep(c)
			idleOpened.Add(1)
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range keepAliveConns {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				oops("keep-alive connection: %v", err)
				return
			}
			keep(c)
			fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil || resp.StatusCode != 200 {
				oops("keep-alive request: %v", err)
				return
			}
			resp.Body.Close()
			keepAliveOpened.Add(1)
		}
	}()

	// Slow headers: a byte a second; the server must hang up.
	for range slowHeaderClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				oops("slow header: %v", err)
				return
			}
			defer c.Close()
			headerOpen.Add(1)
			if _, err := fmt.Fprintf(c, "GET %s/products HTTP/1.1\r\nHost: %s\r\nX-Slow: ", base, addr); err != nil {
				return
			}
			for ctx.Err() == nil {
				if _, err := c.Write([]byte("a")); err != nil {
					headerCut.Add(1)
					return
				}
				time.Sleep(time.Second)
			}
			// Still writable at the end? Then look for the hang-up.
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
				headerCut.Add(1)
			}
		}()
	}

	// Slow bodies, with a valid key: the body arrives a byte a second.
	for range slowBodyClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				oops("slow body: %v", err)
				return
			}
			defer c.Close()
			fmt.Fprintf(c, "POST %s/licenses HTTP/1.1\r\nHost: %s\r\nAuthorization: Apikey %s\r\nContent-Type: application/vnd.api+json\r\nContent-Length: 100000\r\n\r\n", base, addr, key)
			for ctx.Err() == nil {
				if _, err := c.Write([]byte(" ")); err != nil {
					return
				}
				time.Sleep(time.Second)
			}
		}()
	}

	// Huge headers (1 MiB) and huge bodies (declared 1 GiB; streamed 16 MiB
	// without a length), again and again.
	wg.Add(1)
	go func() {
		defer wg.Done()
		big := strings.Repeat("h", 1<<20)
		for ctx.Err() == nil {
			r := call(ctx, "GET", srv.url+base+"/products", key, nil, map[string]string{"X-Huge": big})
			switch {
			case ctx.Err() != nil:
			case r.err == nil && r.status == 431:
				tooLarge431.Add(1)
			case r.err != nil && hungUp(r.err):
				// Refused before the client finished sending.
			default:
				oops("huge header: %s", r)
			}
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			req, _ := http.NewRequestWithContext(ctx, "POST", srv.url+base+"/licenses/batch_create", io.LimitReader(zeros{}, 1<<30))
			req.ContentLength = 1 << 30
			req.Header.Set("Authorization", "Apikey "+key)
			req.Header.Set("Content-Type", "application/vnd.api+json")
			resp, err := httpClient.Do(req)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				if !hungUp(err) {
					oops("declared huge body: %v", err)
				}
				continue
			}
			resp.Body.Close()
			if resp.StatusCode != 413 {
				oops("declared huge body: status %d", resp.StatusCode)
				continue
			}
			tooLarge413.Add(1)
			r := callReader(ctx, "POST", srv.url+base+"/licenses/batch_create", key, io.LimitReader(zeros{}, 16<<20), nil)
			switch {
			case ctx.Err() != nil:
			case r.err == nil && r.status == 413 && slices.Equal(r.codes(), []string{"BODY_TOO_LARGE"}):
				tooLarge413.Add(1)
			case r.err != nil && hungUp(r.err):
				// The server answered 413 and closed before the client
				// finished sending: also a refusal.
				tooLarge413.Add(1)
			default:
				oops("streamed huge body: %s", r)
			}
		}
	}()

	// The normal client: a list and a create, ten times a second.
	normal := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{}}
	var latencies []time.Duration
	for n := 0; ctx.Err() == nil; n++ {
		var req *http.Request
		if n%2 == 0 {
			req, _ = http.NewRequest("GET", srv.url+base+"/licenses?page[size]=10", nil)
		} else {
			req, _ = http.NewRequest("POST", srv.url+base+"/licenses", strings.NewReader(`{"data":`+licenseJSON("u1", product, fmt.Sprint("normal-", n))+`}`))
			req.Header.Set("Content-Type", "application/vnd.api+json")
		}
		req.Header.Set("Authorization", "Apikey "+key)
		start := time.Now()
		resp, err := normal.Do(req)
		elapsed := time.Since(start)
		if err != nil {
			t.Fatalf("normal request during the abuse: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if want := []int{200, 201}[n%2]; resp.StatusCode != want {
			t.Errorf("normal request: status %d, want %d", resp.StatusCode, want)
		}
		if elapsed > maxNormalAnswer {
			t.Errorf("a normal request took %v during the abuse (more than %v)", elapsed, maxNormalAnswer)
		}
		latencies = append(latencies, elapsed)
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	wg.Wait()

	for _, u := range unexpected {
		t.Error(u)
	}
	if headerCut.Load() != headerOpen.Load() {
		t.Errorf("the server hung up on %d of %d slow-header clients", headerCut.Load(), headerOpen.Load())
	}
	if tooLarge431.Load() == 0 || tooLarge413.Load() == 0 {
		t.Errorf("huge requests refused: %d × 431, %d × 413", tooLarge431.Load(), tooLarge413.Load())
	}
	slices.Sort(latencies)
	pct := func(p int) time.Duration { return latencies[(len(latencies)-1)*p/100].Round(time.Millisecond) }
	t.Logf("during %v of %d idle and %d keep-alive connections, %d slow-header and %d slow-body clients, %d huge headers (431) and %d huge bodies (413): %d normal requests all answered, p50 %v, p99 %v, max %v; %d/%d slow-header clients cut off",
		abuseFor, idleOpened.Load(), keepAliveOpened.Load(), slowHeaderClients, slowBodyClients, tooLarge431.Load(), tooLarge413.Load(),
		len(latencies), pct(50), pct(99), latencies[len(latencies)-1].Round(time.Millisecond), headerCut.Load(), headerOpen.Load())
}

// zeros is an endless reader of spaces (valid JSON whitespace).
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// hungUp reports whether err is the server closing the connection on a
// client that was still sending.
func hungUp(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe")
}
