package faulttest

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

// internals are strings no response body may carry unless the request
// itself did: SQL, driver and engine names, stack traces, file paths.
var internals = []string{
	"SELECT", "INSERT", "UPDATE ", "DELETE FROM", " FROM ", " WHERE ", "SQLSTATE", "syntax error",
	"sqlite", "SQLITE", "postgres", "pgx", "pgconn", "no such table", `relation "`,
	"goroutine ", "panic", ".go:", "runtime.", "/tmp/", "/root/", "/home/", "/var/", "licensor.db",
}

// TestNoLeaks drives a server with bad input and then with a failing
// database (its tables renamed away under it), and checks every response
// and every log line: no API key secret and no database password anywhere;
// no SQL, stack trace or file path in any response body, and each 5xx
// logged with its cause for the operator.
func TestNoLeaks(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		db := e.newDB(t)
		password := "Pw-" + fmt.Sprint(time.Now().UnixNano()) // trust auth ignores it
		if strings.HasPrefix(db, "postgres://") {
			u, _ := url.Parse(db)
			u.User = url.UserPassword(u.User.Username(), password)
			db = u.String()
		}
		key := createKey(t, db, "bss", "write")
		secret := key[strings.LastIndex(key, "_")+1:]
		fake := key[:strings.LastIndex(key, "_")+1] + strings.Repeat("q", len(secret)) // the right prefix, a wrong secret
		srv := startServer(t, db)
		product := createProduct(t, srv, key)

		type exchange struct {
			what, request string
			r             result
		}
		var seen []exchange
		send := func(what, method, path, k string, body string, header map[string]string) result {
			var b []byte
			if body != "" {
				b = []byte(body)
			}
			r := call(context.Background(), method, srv.url+path, k, b, header)
			if r.err != nil {
				t.Fatalf("%s: %v", what, r.err)
			}
			seen = append(seen, exchange{what, method + " " + path + " " + body + fmt.Sprint(header), r})
			return r
		}
		lic := func(attrs string) string {
			return `{"data":{"type":"License","attributes":{` + attrs + `},"relationships":{"user":{"data":{"type":"User","id":"u1"}},"product":{"data":{"type":"Product","id":"` + product + `"}}}}}`
		}
		badInput := func() {
			send("no key", "GET", base+"/licenses", "", "", nil)
			send("wrong secret", "GET", base+"/licenses", fake, "", nil)
			send("made-up key", "GET", base+"/licenses", "lk_abcdefgh_"+strings.Repeat("z", 32), "", nil)
			send("key in the query", "GET", base+"/licenses?api_key="+key, key, "", nil)
			send("basic auth", "GET", base+"/licenses", "", "", map[string]string{"Authorization": "Basic " + key})
			send("malformed JSON", "POST", base+"/licenses", key, `{"data":{"type":"License",`, nil)
			send("invalid UTF-8", "POST", base+"/licenses", key, "{\"data\":\"\xff\xfe\"}", nil)
			send("NUL", "POST", base+"/licenses", key, "{\"data\":\x00}", nil)
			send("huge number", "POST", base+"/licenses", key, lic(`"start_date":1e400`), nil)
			send("SQL in order id", "POST", base+"/licenses", key, lic(`"order_id":"x'); DROP TABLE licenses; --"`), nil)
			send("SQL in filter", "GET", base+"/licenses?filter[order_id]="+url.QueryEscape("' OR 1=1 --"), key, "", nil)
			send("SQL in sort", "GET", base+"/licenses?sort="+url.QueryEscape("id; DROP TABLE licenses"), key, "", nil)
			send("garbage cursor", "GET", base+"/licenses?page[after]=eyJrIjoxfQ", key, "", nil)
			send("forged cursor", "GET", base+"/licenses?page[after]="+url.QueryEscape("eyJpIjotMSwicSI6IngifQ"), key, "", nil)
			send("huge id", "GET", base+"/licenses/99999999999999999999999", key, "", nil)
			send("unknown product", "POST", base+"/licenses", key, strings.Replace(lic(""), `"id":"`+product+`"`, `"id":"9223372036854775807"`, 1), nil)
			send("bad content type", "POST", base+"/licenses", key, "x", map[string]string{"Content-Type": "text/xml"})
			send("bad idempotency key", "POST", base+"/licenses", key, lic(""), map[string]string{"Idempotency-Key": strings.Repeat("k", 300)})
			send("bad period", "POST", base+"/products", key, `{"data":{"type":"Product","attributes":{"title":"x","license_period":"P99999999999Y"}}}`, nil)
			send("unknown route", "GET", "/../../etc/passwd", key, "", nil)
			send("method", "PUT", base+"/licenses", key, "{}", nil)
		}
		badInput()

		// The database fails under the server: the tables it reads are
		// renamed away (the next key lookup misses the 1 s cache).
		inspect := openSQL(t, db)
		if _, err := inspect.Exec(`ALTER TABLE licenses RENAME TO licenses_gone`); err != nil {
			t.Fatal(err)
		}
		send("failing database: list", "GET", base+"/licenses", key, "", nil)
		send("failing database: get", "GET", base+"/licenses/1", key, "", nil)
		send("failing database: create", "POST", base+"/licenses", key, lic(`"order_id":"leak-1"`), nil)
		send("failing database: batch", "POST", base+"/licenses/batch_create", key, `{"data":[`+licenseJSON("u1", product, "leak-2")+`]}`, map[string]string{"Idempotency-Key": "leak"})
		if _, err := inspect.Exec(`ALTER TABLE api_keys RENAME TO api_keys_gone`); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1100 * time.Millisecond) // past the key cache
		badInput()
		send("failing database: readyz", "GET", "/readyz", "", "", nil)
		// Put it back, so that the schema can be dropped and the server stop.
		for _, q := range []string{`ALTER TABLE licenses_gone RENAME TO licenses`, `ALTER TABLE api_keys_gone RENAME TO api_keys`} {
			if _, err := inspect.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		srv.stop(t)

		fivexx := 0
		for _, x := range seen {
			body := string(x.r.body)
			if x.r.status >= 500 {
				fivexx++
			}
			for _, s := range []string{secret, password} {
				if strings.Contains(body, s) || strings.Contains(fmt.Sprint(x.r.header), s) {
					t.Errorf("%s: the response carries a secret: %s", x.what, x.r)
				}
			}
			for _, m := range internals {
				if strings.Contains(body, m) && !strings.Contains(x.request, m) {
					t.Errorf("%s: the response carries %q: %s", x.what, m, x.r)
				}
			}
			if x.r.status >= 500 && !strings.Contains(body, `"code":"INTERNAL"`) && !strings.Contains(body, `"code":"UNAVAILABLE"`) {
				t.Errorf("%s: a %d without a code: %s", x.what, x.r.status, x.r)
			}
		}
		if fivexx == 0 {
			t.Fatal("the failing database caused no 5xx: the test did not test")
		}

		logs := srv.logs.String()
		for _, s := range []string{secret, fake[strings.LastIndex(fake, "_")+1:], strings.Repeat("z", 32), password} {
			if strings.Contains(logs, s) {
				t.Errorf("the log carries a secret (%.6s...)", s)
			}
		}
		// Every 5xx is logged at error level with its cause and request id.
		logged, sample := 0, ""
		for _, rec := range srv.logs.records("request") {
			if st, _ := rec["status"].(float64); st >= 500 {
				cause, _ := rec["err"].(string)
				if rec["level"] != "ERROR" || cause == "" || rec["request_id"] == "" {
					t.Errorf("a %v log line without level ERROR, cause or request id: %v", st, rec)
				}
				if logged++; sample == "" {
					sample = cause
				}
			}
		}
		if logged == 0 {
			t.Errorf("no 5xx in the access log")
		}
		t.Logf("%s: %d requests (%d answered 5xx, %d 5xx log lines with their cause); no secret in %d bytes of log, no internals in any body",
			e.name, len(seen), fivexx, logged, len(logs))
		t.Logf("a 5xx cause in the log: %s", sample)
	})
}
