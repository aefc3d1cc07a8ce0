package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/client"
	"github.com/licensor/licensor/internal/legacy/legacytest"
	"github.com/licensor/licensor/internal/testdb"
)

// importRun runs "import legacy" in-process as a user would, with stdin as
// standard input.
func importRun(ctx context.Context, stdin string, args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	err = importLegacy(ctx, args, func(string) string { return "" }, strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), err
}

var summaryPattern = regexp.MustCompile(`(?m)^(read|imported|already present|rejected|valid|not processed):\s+(\d+)$`)

// summaryOf reads the final summary printed on standard output.
func summaryOf(t *testing.T, stdout string) map[string]int {
	t.Helper()
	m := map[string]int{}
	for _, g := range summaryPattern.FindAllStringSubmatch(stdout, -1) {
		m[g[1]], _ = strconv.Atoi(g[2])
	}
	if _, ok := m["read"]; !ok {
		t.Fatalf("no summary in %q", stdout)
	}
	return m
}

func wantSummary(t *testing.T, stdout string, want map[string]int) {
	t.Helper()
	got := summaryOf(t, stdout)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("summary %s = %d, want %d\n%s", k, got[k], v, stdout)
		}
	}
}

// importSetup is a running server with the products of a generated legacy
// data set, and the mapping files to import it.
type importSetup struct {
	dir          string
	db           string
	srv          *process
	key          string
	c            *client.Client
	ds           *legacytest.Dataset
	productsFile string
	productIDs   map[string]int64 // legacy product id → v4 id
}

func newImportSetup(t *testing.T, o legacytest.Options) *importSetup {
	t.Helper()
	s := &importSetup{dir: t.TempDir(), productIDs: map[string]int64{}}
	loc, err := time.LoadLocation("Europe/Helsinki")
	if err != nil {
		t.Fatal(err)
	}
	o.Location, o.Service = loc, "boox"
	began := time.Now()
	if s.ds, err = legacytest.Generate(s.dir, o); err != nil {
		t.Fatal(err)
	}
	t.Logf("generated %d records (%d good) in %s", s.ds.Read, len(s.ds.Good), time.Since(began).Round(time.Millisecond))
	s.db = filepath.Join(s.dir, "licensor.db")
	s.key = createKey(t, s.db, "importer", "write")
	s.srv = startServer(t, s.db)
	s.c = client.New(s.srv.url, s.key)
	for _, p := range s.ds.Products {
		prod, _, err := s.c.CreateProduct(context.Background(), licensor.NewProduct("Legacy product "+p))
		if err != nil {
			t.Fatal(err)
		}
		s.productIDs[p] = prod.ID
	}
	s.productsFile = filepath.Join(s.dir, "products.csv")
	if err := s.ds.WriteProducts(s.productsFile, s.productIDs); err != nil {
		t.Fatal(err)
	}
	return s
}

// args are the flags of an import of the data set to url, then extra.
func (s *importSetup) args(url string, extra ...string) []string {
	return append([]string{"--url", url, "--key", s.key, "--users", s.ds.UsersFile, "--products", s.productsFile,
		"--timezone", "Europe/Helsinki", "--service", "boox", "--progress", "none"}, extra...)
}

// draftOf is the license the importer creates for a good record.
func (s *importSetup) draftOf(order string) licensor.LicenseDraft {
	e := s.ds.Good[order]
	return licensor.LicenseDraft{UserID: e.UserID, ProductID: s.productIDs[e.LegacyProduct], Status: &e.Status,
		StartDate: &e.Start, StopDate: &e.Stop, OrderID: &order, Recurring: &e.Recurring, PriceAmount: &e.Amount,
		PriceCurrency: &e.Currency, PurchaseTimestamp: &e.Purchase, PaymentMethod: e.PaymentMethod}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (s *importSetup) count(t *testing.T) int64 {
	t.Helper()
	page, err := s.c.Licenses(context.Background(), client.LicenseQuery{Count: true, PageSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	return *page.Total
}

// checkLicenses compares the licenses on the server with the good records
// of the data set: each exactly once, every field as converted.
func (s *importSetup) checkLicenses(t *testing.T) {
	t.Helper()
	now := time.Now().Unix()
	seen := map[string]bool{}
	problems := 0
	fail := func(format string, args ...any) {
		problems++
		if problems <= 20 {
			t.Errorf(format, args...)
		}
	}
	for l, err := range s.c.AllLicenses(context.Background(), client.LicenseQuery{PageSize: 1000}) {
		if err != nil {
			t.Fatal(err)
		}
		if l.OrderID == nil {
			fail("license %d has no order_id", l.ID)
			continue
		}
		order := *l.OrderID
		if seen[order] {
			fail("order_id %s twice", order)
		}
		seen[order] = true
		e, ok := s.ds.Good[order]
		if !ok {
			fail("license %d with order_id %s is not a good record of the data set", l.ID, order)
			continue
		}
		status := e.Status
		if status == licensor.StatusActive && e.Stop <= now {
			status = licensor.StatusExpired // the effective status
		}
		near := e.Stop > now-60 && e.Stop < now+60 // could have expired during the check
		pm := ""
		if e.PaymentMethod != nil {
			pm = *e.PaymentMethod
		}
		gotPM := ""
		if l.PaymentMethod != nil {
			gotPM = *l.PaymentMethod
		}
		if l.UserID != e.UserID || l.ProductID != s.productIDs[e.LegacyProduct] || (l.Status != status && !near) ||
			l.StartDate != e.Start || l.StopDate == nil || *l.StopDate != e.Stop || l.PurchaseTimestamp != e.Purchase ||
			l.PriceAmount == nil || *l.PriceAmount != e.Amount || l.PriceCurrency == nil || *l.PriceCurrency != e.Currency ||
			l.Recurring != e.Recurring || gotPM != pm || l.ExpiryDate == nil || *l.ExpiryDate != e.Stop {
			fail("%s (%s): license %+v, want %+v", order, e.Source, l, e)
		}
	}
	if len(seen) != len(s.ds.Good) {
		fail("%d licenses on the server, want the %d good records", len(seen), len(s.ds.Good))
	}
}

// checkRejects reads a reject file and compares it with the bad records
// of the data set.
func (s *importSetup) checkRejects(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	seen := map[string]bool{}
	problems := 0
	fail := func(format string, args ...any) {
		problems++
		if problems <= 20 {
			t.Errorf(format, args...)
		}
	}
	for sc.Scan() {
		var line struct {
			Source string          `json:"source"`
			Record json.RawMessage `json:"record"`
			Reason string          `json:"reason"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			fail("reject line %q: %v", sc.Text(), err)
			continue
		}
		src := strings.TrimPrefix(line.Source, s.ds.Inputs+string(filepath.Separator))
		want, ok := s.ds.Bad[src]
		switch {
		case line.Reason == "" || line.Source == "" || len(line.Record) == 0:
			fail("incomplete reject line %s", sc.Text())
		case seen[src]:
			fail("%s rejected twice", src)
		case !ok:
			fail("%s rejected (%s), but it is a good record", src, line.Reason)
		case !strings.Contains(line.Reason, want):
			fail("%s rejected with %q, want %q", src, line.Reason, want)
		}
		seen[src] = true
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(seen) != len(s.ds.Bad) {
		fail("%d rejects, want %d", len(seen), len(s.ds.Bad))
	}
}

// datasetSize is the size of a test's data set: full, a tenth with -short,
// a quarter under the race detector (which makes the importer several
// times slower).
func datasetSize(t *testing.T, full int) (users, licenses int) {
	switch {
	case testing.Short():
		full /= 10
	case legacytest.RaceEnabled:
		full /= 4
		t.Logf("race detector on: %d licenses instead of %d", full, full*4)
	}
	return full / 10, full
}

// TestImportLegacyEndToEnd imports the generated data set (100,000
// licenses over 10,000 users with malformed records of every kind; a tenth
// with -short) into a real server: a dry run, the import, and the same
// import again.
func TestImportLegacyEndToEnd(t *testing.T) {
	users, licenses := datasetSize(t, 100000)
	s := newImportSetup(t, legacytest.Options{Seed: 1, Users: users, Licenses: licenses, BadPercent: 8})
	ctx := context.Background()
	good, bad := len(s.ds.Good), len(s.ds.Bad)

	began := time.Now()
	// The dry run only reads from the server: whether the products exist.
	out, errOut, err := importRun(ctx, "", s.args(s.srv.url, "--dry-run", s.ds.Inputs)...)
	if err == nil || exitCode(err) != 1 {
		t.Fatalf("dry run: err %v, want exit status 1 for the rejects\n%s", err, errOut)
	}
	wantSummary(t, out, map[string]int{"read": s.ds.Read, "valid": good, "rejected": bad})
	if !strings.Contains(errOut, "dry run: nothing was written") {
		t.Errorf("dry run notes:\n%s", errOut)
	}
	// Without --reject-file every reject is listed on standard error.
	if n := strings.Count(errOut, "\nrejected ") + btoi(strings.HasPrefix(errOut, "rejected ")); n != bad {
		t.Errorf("%d rejects listed on standard error, want %d", n, bad)
	}
	if !strings.Contains(out, fmt.Sprintf("check:           ok: read %d = valid %d + rejected %d", s.ds.Read, good, bad)) {
		t.Errorf("no check line:\n%s", out)
	}
	if n := s.count(t); n != 0 {
		t.Fatalf("the dry run wrote %d licenses", n)
	}
	t.Logf("dry run: %s", time.Since(began).Round(time.Millisecond))

	rejects := filepath.Join(s.dir, "rejects.jsonl")
	began = time.Now()
	out, errOut, err = importRun(ctx, "", s.args(s.srv.url, "--reject-file", rejects, s.ds.Inputs)...)
	took := time.Since(began)
	if err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), fmt.Sprintf("%d of %d records rejected", bad, s.ds.Read)) {
		t.Fatalf("import: err %v\n%s", err, errOut)
	}
	wantSummary(t, out, map[string]int{"read": s.ds.Read, "imported": good, "already present": 0, "rejected": bad})
	t.Logf("import: %d records in %s (%.0f/s)", s.ds.Read, took.Round(time.Millisecond), float64(s.ds.Read)/took.Seconds())
	s.checkRejects(t, rejects)
	s.checkLicenses(t)

	// The same import again creates nothing: every good record is
	// already present (found by its order_id, or replayed by the
	// server's Idempotency-Key support), and the rejects are the same.
	rejects2 := filepath.Join(s.dir, "rejects2.jsonl")
	began = time.Now()
	out, errOut, err = importRun(ctx, "", s.args(s.srv.url, "--reject-file", rejects2, s.ds.Inputs)...)
	if exitCode(err) != 1 {
		t.Fatalf("second import: err %v\n%s", err, errOut)
	}
	wantSummary(t, out, map[string]int{"read": s.ds.Read, "imported": 0, "already present": good, "rejected": bad})
	t.Logf("second import: %s", time.Since(began).Round(time.Millisecond))
	if n := s.count(t); n != int64(good) {
		t.Errorf("%d licenses after the second import, want %d", n, good)
	}
	first, _ := os.ReadFile(rejects)
	second, _ := os.ReadFile(rejects2)
	if !bytes.Equal(first, second) {
		t.Errorf("the second run's reject file differs from the first's")
	}
}

// gate is a proxy in front of the server that can act when batch_create
// requests arrive.
type gate struct {
	proxy   *httputil.ReverseProxy
	batches atomic.Int64
	// onBatch runs before batch n (1-based) is forwarded; it may hold it.
	onBatch func(n int64, w http.ResponseWriter, r *http.Request) (handled bool)
}

// newGate starts a gate in front of target; onBatch is set before the
// first request can arrive.
func newGate(t *testing.T, target string, onBatch func(g *gate, n int64, w http.ResponseWriter, r *http.Request) bool) (*gate, string) {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{proxy: httputil.NewSingleHostReverseProxy(u)}
	g.onBatch = func(n int64, w http.ResponseWriter, r *http.Request) bool { return onBatch(g, n, w, r) }
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return g, srv.URL
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/licenses/batch_create") {
		n := g.batches.Add(1)
		if g.onBatch != nil && g.onBatch(n, w, r) {
			return
		}
	}
	g.proxy.ServeHTTP(w, r)
}

// TestImportSurvivesKill runs the importer as a process, kills it with
// SIGKILL while a batch that the server has committed waits for its
// answer, then runs the same command again: no license is missing and none
// is there twice.
func TestImportSurvivesKill(t *testing.T) {
	users, licenses := datasetSize(t, 20000)
	s := newImportSetup(t, legacytest.Options{Seed: 2, Users: users, Licenses: licenses, BadPercent: 5})
	const chunk, acknowledged = 200, 5
	landed := make(chan struct{})
	release := make(chan struct{})
	_, proxyURL := newGate(t, s.srv.url, func(g *gate, n int64, w http.ResponseWriter, r *http.Request) bool {
		switch {
		case n <= acknowledged:
			return false
		case n == acknowledged+1:
			// Forward it (the server commits it) but keep the answer.
			rec := httptest.NewRecorder()
			g.proxy.ServeHTTP(rec, r)
			close(landed)
			<-release
			return true
		default:
			<-release
			http.Error(w, "gone", http.StatusServiceUnavailable)
			return true
		}
	})

	cmd := exec.Command(licensorBinary(t), append([]string{"import", "legacy"},
		s.args(proxyURL, "--chunk", strconv.Itoa(chunk), "--progress", "plain", s.ds.Inputs)...)...)
	var out, errOut syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-landed:
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("the importer never sent batch %d\n%s", acknowledged+1, errOut.String())
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no clean-up of any kind
		t.Fatal(err)
	}
	err := cmd.Wait()
	close(release)
	if err == nil || cmd.ProcessState.Success() {
		t.Fatalf("the importer was not killed: %v", err)
	}
	if n := s.count(t); n != (acknowledged+1)*chunk {
		t.Fatalf("%d licenses after the kill, want %d (%d acknowledged batches and one unacknowledged)", n, (acknowledged+1)*chunk, acknowledged)
	}

	outText, errText, err := importRun(context.Background(), "", s.args(s.srv.url, "--chunk", strconv.Itoa(chunk), s.ds.Inputs)...)
	if exitCode(err) != 1 || !strings.Contains(err.Error(), "rejected") {
		t.Fatalf("rerun: %v\n%s", err, errText)
	}
	landedBefore := (acknowledged + 1) * chunk
	wantSummary(t, outText, map[string]int{"read": s.ds.Read, "imported": len(s.ds.Good) - landedBefore,
		"already present": landedBefore, "rejected": len(s.ds.Bad)})
	s.checkLicenses(t)
}

// TestImportInterrupt cancels the context (what Ctrl-C does) while batch 3
// is in flight: that batch completes, nothing more is sent, and the same
// command again finishes the job.
func TestImportInterrupt(t *testing.T) {
	s := newImportSetup(t, legacytest.Options{Seed: 3, Users: 300, Licenses: 3000, BadPercent: 5})
	const chunk = 100
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g, proxyURL := newGate(t, s.srv.url, func(g *gate, n int64, w http.ResponseWriter, r *http.Request) bool {
		if n == 3 {
			cancel()
		}
		return false
	})
	out, errOut, err := importRun(ctx, "", s.args(proxyURL, "--chunk", strconv.Itoa(chunk), s.ds.Inputs)...)
	if err == nil || !strings.Contains(err.Error(), "interrupted") || exitCode(err) != 1 {
		t.Fatalf("err %v, want an interruption\n%s", err, errOut)
	}
	wantSummary(t, out, map[string]int{"imported": 3 * chunk, "already present": 0})
	if n := g.batches.Load(); n != 3 {
		t.Errorf("%d batches sent, want 3", n)
	}
	if n := s.count(t); n != 3*chunk {
		t.Fatalf("%d licenses on the server, want %d", n, 3*chunk)
	}
	out, errOut, err = importRun(context.Background(), "", s.args(s.srv.url, "--chunk", strconv.Itoa(chunk), s.ds.Inputs)...)
	if exitCode(err) != 1 {
		t.Fatalf("rerun: %v\n%s", err, errOut)
	}
	wantSummary(t, out, map[string]int{"read": s.ds.Read, "imported": len(s.ds.Good) - 3*chunk, "already present": 3 * chunk, "rejected": len(s.ds.Bad)})
	s.checkLicenses(t)
}

// TestImportServerAnswers covers what the server can say about a batch:
// order ids already taken (already present), a product deleted after the
// importer checked it (those records rejected, the rest resent), passing
// failures (retried), and a bad key (the import stops).
func TestImportServerAnswers(t *testing.T) {
	s := newImportSetup(t, legacytest.Options{Seed: 4, Users: 100, Licenses: 1500})
	ctx := context.Background()

	// Ten records are already on the server, under their order ids, as
	// the importer would create them (already present); ten order ids
	// are held by other licenses (conflicts).
	var taken, same []string
	for order, e := range s.ds.Good {
		switch {
		case e.LegacyProduct == "3":
		case len(taken) < 10:
			taken = append(taken, order)
			if _, err := s.c.CreateLicense(ctx, licensor.LicenseDraft{UserID: "someone-else", ProductID: s.productIDs["1"], OrderID: &order}); err != nil {
				t.Fatal(err)
			}
		case len(same) < 10:
			same = append(same, order)
			if _, err := s.c.CreateLicense(ctx, s.draftOf(order)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Product "3" disappears once the importer has checked it; the first
	// two batches meet a server that is briefly unavailable.
	lost := 0
	for _, e := range s.ds.Good {
		if e.LegacyProduct == "3" {
			lost++
		}
	}
	if lost == 0 {
		t.Fatal("no good record of product 3; the test does not test")
	}
	var deleteOnce sync.Once
	_, proxyURL := newGate(t, s.srv.url, func(g *gate, n int64, w http.ResponseWriter, r *http.Request) bool {
		deleteOnce.Do(func() {
			if err := s.c.DeleteProduct(ctx, s.productIDs["3"], false, ""); err != nil {
				t.Error(err)
			}
		})
		if n <= 2 {
			w.Header().Set("Retry-After", "0")
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	rejects := filepath.Join(s.dir, "rejects.jsonl")
	out, errOut, err := importRun(ctx, "", s.args(proxyURL, "--retry-wait", "10ms", "--reject-file", rejects, s.ds.Inputs)...)
	if exitCode(err) != 1 {
		t.Fatalf("err %v\n%s", err, errOut)
	}
	wantSummary(t, out, map[string]int{"read": s.ds.Read, "imported": len(s.ds.Good) - lost - 20, "already present": 10, "rejected": lost + 10})
	if !strings.Contains(out, "of which conflicts: 10") {
		t.Errorf("no conflicts line:\n%s", out)
	}
	if !strings.Contains(errOut, "retry 1 of 6") || !strings.Contains(errOut, "retry 2 of 6") {
		t.Errorf("no retry messages:\n%s", errOut)
	}
	b, _ := os.ReadFile(rejects)
	if n := strings.Count(string(b), "refused by the server: PRODUCT_NOT_FOUND"); n != lost {
		t.Errorf("%d PRODUCT_NOT_FOUND rejects, want %d:\n%.2000s", n, lost, b)
	}
	for _, order := range taken {
		if !strings.Contains(string(b), "conflict: order_id "+order+" is already held by license") {
			t.Errorf("no conflict reject for %s", order)
		}
	}
	if n := strings.Count(string(b), "which differs from this record: user someone-else there"); n != 10 {
		t.Errorf("%d conflicts name the user, want 10", n)
	}

	// A revoked or wrong key stops everything at once.
	args := s.args(s.srv.url, s.ds.Inputs)
	args[3] = "lk_aaaaaaaa_" + strings.Repeat("a", 32)
	out, errOut, err = importRun(ctx, "", args...)
	if err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), "API_KEY_INVALID") {
		t.Fatalf("wrong key: %v\n%s%s", err, out, errOut)
	}
}

// TestImportStdinAndSeeds imports the committed seed examples, from files
// and from standard input in both formats, and checks a converted license
// to the second.
func TestImportStdinAndSeeds(t *testing.T) {
	db := filepath.Join(t.TempDir(), "licensor.db")
	key := createKey(t, db, "importer", "write")
	srv := startServer(t, db)
	ctx := context.Background()
	c := client.New(srv.url, key)
	dir := t.TempDir()
	var mapping strings.Builder
	mapping.WriteString("legacy_product_id,product_id\n")
	for _, p := range []string{"2", "3", "sport-hd"} {
		prod, _, err := c.CreateProduct(ctx, licensor.NewProduct("P"+p))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&mapping, "%s,%d\n", p, prod.ID)
	}
	products := filepath.Join(dir, "products.csv")
	if err := os.WriteFile(products, []byte(mapping.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	seeds := filepath.Join("..", "..", "internal", "legacy", "testdata")
	args := func(extra ...string) []string {
		return append([]string{"--url", srv.url, "--key", key, "--users", filepath.Join(seeds, "users.csv"), "--products", products,
			"--timezone", "Europe/Helsinki", "--service", "boox", "--progress", "none"}, extra...)
	}
	csvText, err := os.ReadFile(filepath.Join(seeds, "licenses.csv"))
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, err := importRun(ctx, string(csvText), args("-")...)
	if exitCode(err) != 1 {
		t.Fatalf("stdin CSV: %v\n%s", err, errOut)
	}
	wantSummary(t, out, map[string]int{"read": 4, "imported": 1, "rejected": 3})
	if !strings.Contains(errOut, `rejected -:3: price "abc" is not a decimal number`) {
		t.Errorf("rejects not shown:\n%s", errOut)
	}
	jsonText, err := os.ReadFile(filepath.Join(seeds, "alice@example.com.json"))
	if err != nil {
		t.Fatal(err)
	}
	// On standard input the file name cannot name the user: wrap it.
	wrapped := `{"email":"alice@example.com",` + strings.TrimPrefix(strings.TrimSpace(string(jsonText)), "{")
	out, errOut, err = importRun(ctx, wrapped, args("--format", "json", "-")...)
	if err != nil {
		t.Fatalf("stdin JSON: %v\n%s", err, errOut)
	}
	wantSummary(t, out, map[string]int{"read": 2, "imported": 2, "rejected": 0})
	// Everything again, from the files: the five good seeds, three of
	// them already there.
	out, errOut, err = importRun(ctx, "", args(seeds)...)
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "products.csv") {
		// The directory also holds the mapping files, which are not
		// legacy CSV: the header check refuses them before any write.
		t.Fatalf("seed directory: %v\n%s%s", err, out, errOut)
	}
	files := []string{filepath.Join(seeds, "alice@example.com.json"), filepath.Join(seeds, "wrapped.jsonl"), filepath.Join(seeds, "licenses.csv")}
	// A dry run without a key contacts nothing (the URL leads nowhere).
	noKey := append(args("--dry-run"), files...)
	noKey[1], noKey = "http://127.0.0.1:1", append(noKey[:2], noKey[4:]...)
	out, errOut, err = importRun(ctx, "", noKey...)
	if exitCode(err) != 1 || !strings.Contains(errOut, "products were not checked on the server (no --key)") {
		t.Fatalf("dry run without a key: %v\n%s", err, errOut)
	}
	wantSummary(t, out, map[string]int{"read": 12, "valid": 5, "rejected": 7})
	out, errOut, err = importRun(ctx, "", args(files...)...)
	if exitCode(err) != 1 {
		t.Fatalf("seed files: %v\n%s", err, errOut)
	}
	wantSummary(t, out, map[string]int{"read": 12, "imported": 2, "already present": 3, "rejected": 7})

	order := "legacy:boox:2"
	page, err := c.Licenses(ctx, client.LicenseQuery{OrderID: order})
	if err != nil || len(page.Licenses) != 1 {
		t.Fatalf("license %s: %v %+v", order, err, page)
	}
	l := page.Licenses[0]
	// 2024-03-31 03:30:00 Helsinki is in the spring gap: read as 04:30 EEST;
	// 2024-10-27 03:30:00 is in the autumn overlap: the earlier, EEST.
	if l.UserID != "41" || l.StartDate != 1711848600 || *l.StopDate != 1729989000 || l.PurchaseTimestamp != 1711792800 ||
		*l.PriceAmount != 1500 || *l.PriceCurrency != "JPY" || *l.PaymentMethod != "wallet" || !l.Recurring {
		t.Errorf("license %s: %+v", order, l)
	}
}

func TestImportUsage(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	users := write("users.csv", "email,user_id\na@x,1\n")
	products := write("products.csv", "legacy_product_id,product_id\n1,1\n")
	input := write("in.jsonl", `{"email":"a@x","license":{"licenseList":{"licenses":[]}}}`+"\n")
	badUsers := write("bad-users.csv", "email,user\na@x,1\n")
	badCSV := write("bad.csv", "email,id,colour\n")
	base := []string{"--url", "http://127.0.0.1:1", "--key", "k", "--users", users, "--products", products}
	with := func(extra ...string) []string { return append(append([]string{}, base...), extra...) }
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no subcommand", nil, importUsage},
		{"unknown subcommand", []string{"csv"}, importUsage},
		{"no users", []string{"legacy", "--products", products, "--key", "k", input}, "--users is required"},
		{"no products", []string{"legacy", "--users", users, "--key", "k", input}, "--products is required"},
		{"no key", []string{"legacy", "--users", users, "--products", products, input}, "--key (or LICENSOR_API_KEY) is required"},
		{"no input", append([]string{"legacy"}, with()...), "no input"},
		{"chunk 0", append([]string{"legacy"}, with("--chunk", "0", input)...), "--chunk must be 1 to 1000"},
		{"chunk 1001", append([]string{"legacy"}, with("--chunk", "1001", input)...), "--chunk must be 1 to 1000"},
		{"bad zone", append([]string{"legacy"}, with("--timezone", "Mars/Olympus", input)...), "not an IANA time zone"},
		{"local zone", append([]string{"legacy"}, with("--timezone", "Local", input)...), "not an IANA time zone"},
		{"bad service", append([]string{"legacy"}, with("--service", "a:b", input)...), "--service must be"},
		{"bad format", append([]string{"legacy"}, with("--format", "xml", input)...), "--format must be"},
		{"bad progress", append([]string{"legacy"}, with("--progress", "fancy", input)...), "--progress must be"},
		{"bad encoding", append([]string{"legacy"}, with("--encoding", "ebcdic", input)...), "--encoding must be auto, utf-8, utf-16le, utf-16be or latin1"},
		{"missing input", append([]string{"legacy"}, with(filepath.Join(dir, "nope.json"))...), "nope.json"},
		{"bad users file", []string{"legacy", "--key", "k", "--users", badUsers, "--products", products, input}, "must name the columns email and user_id"},
		{"missing users file", []string{"legacy", "--key", "k", "--users", filepath.Join(dir, "none.csv"), "--products", products, input}, "none.csv"},
		{"bad CSV header", append([]string{"legacy"}, with(badCSV)...), `unknown column "colour"`},
		{"reject file among the inputs", append([]string{"legacy"}, with("--reject-file", input, input)...), "is also an input"},
		{"parallel 0", append([]string{"legacy"}, with("--parallel", "0", input)...), "--parallel must be 1 to 16"},
		{"unknown flag", append([]string{"legacy"}, with("--frobnicate", input)...), "frobnicate"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := runImport(context.Background(), c.args, func(string) string { return "" }, &out, &errOut)
			if err == nil || !strings.Contains(err.Error()+errOut.String(), c.want) {
				t.Fatalf("err = %v (%s), want one mentioning %q", err, errOut.String(), c.want)
			}
			if code := exitCode(err); code != 2 {
				t.Errorf("exit status %d, want 2", code)
			}
		})
	}
	// Through the CLI entry point, with the key from the environment.
	_, _, err := cli(t, map[string]string{"LICENSOR_API_KEY": "k", "LICENSOR_URL": "http://127.0.0.1:1"},
		"import", "legacy", "--users", users, "--products", products, "--dry-run", "--progress", "none", input)
	if err != nil {
		t.Errorf("dry run of an empty document: %v", err)
	}
}

func TestProgressLine(t *testing.T) {
	var stats importStats
	stats.read.Store(43210)
	stats.imported.Store(40000)
	stats.present.Store(10)
	stats.rejected.Store(3200)
	stats.bytes.Store(250)
	var buf bytes.Buffer
	p := newProgress(&buf, "auto", time.Second, 1000, &stats, false)
	if p.mode != "plain" {
		t.Fatalf("mode %q for a buffer, want plain", p.mode)
	}
	p.began = time.Now().Add(-10 * time.Second)
	p.draw()
	line := buf.String()
	for _, want := range []string{"import:  25% read 43,210, imported 40,000, already present 10, rejected 3,200, ", "/s, ETA "} {
		if !strings.Contains(line, want) {
			t.Errorf("plain line %q lacks %q", line, want)
		}
	}
	if !strings.HasSuffix(line, "\n") || strings.Contains(line, "\r") {
		t.Errorf("plain line %q is not a plain line", line)
	}

	buf.Reset()
	p = newProgress(&buf, "bar", time.Second, 1000, &stats, false)
	p.began = time.Now().Add(-10 * time.Second)
	p.draw()
	p.println("rejected x:1: bad")
	bar := buf.String()
	if !strings.HasPrefix(bar, "\r\x1b[K[======                  ]  25% read 43,210") ||
		!strings.Contains(bar, "\r\x1b[Krejected x:1: bad\n[======") {
		t.Errorf("bar output %q", bar)
	}

	buf.Reset()
	p = newProgress(&buf, "plain", time.Second, -1, &stats, true)
	p.began = time.Now()
	p.draw()
	if s := buf.String(); strings.Contains(s, "%") || strings.Contains(s, "ETA") || !strings.Contains(s, "valid 0") {
		t.Errorf("dry run line without sizes: %q", s)
	}
	if groupDigits(1234567) != "1,234,567" || groupDigits(999) != "999" || groupDigits(0) != "0" {
		t.Errorf("groupDigits")
	}
}

func TestIdempotencyKey(t *testing.T) {
	order := "legacy:s:1"
	a := []licensor.LicenseDraft{{UserID: "1", ProductID: 1, OrderID: &order}}
	b := []licensor.LicenseDraft{{UserID: "2", ProductID: 1, OrderID: &order}}
	k := idempotencyKey("", a)
	if k != idempotencyKey("", a) || k == idempotencyKey("", b) || k == idempotencyKey("x", a) {
		t.Error("the key is not a function of the content and the salt")
	}
	if len(k) > licensor.MaxIdempotencyKeyLen || !strings.HasPrefix(k, "legacy-import-") {
		t.Errorf("key %q", k)
	}
}

// BenchmarkImport measures import throughput in licenses per second
// against a server on SQLite and, when LICENSOR_POSTGRES_URL is set, on
// PostgreSQL. Every iteration imports the same 20,000 licenses under a new
// --service, so that they are all new:
//
//	go test ./cmd/licensor -run '^$' -bench Import -benchtime 3x
func BenchmarkImport(b *testing.B) {
	dir := b.TempDir()
	ds, err := legacytest.Generate(dir, legacytest.Options{Seed: 5, Users: 2000, Licenses: 20000})
	if err != nil {
		b.Fatal(err)
	}
	bin := benchBinary(b)
	// Each run gets a database of its own, so that none imports into one
	// the others have grown.
	type engine struct {
		name string
		db   func(b *testing.B) string
	}
	engines := []engine{{"sqlite", func(b *testing.B) string { return filepath.Join(b.TempDir(), "bench.db") }}}
	if raw := os.Getenv("LICENSOR_POSTGRES_URL"); raw != "" {
		engines = append(engines, engine{"postgres", func(b *testing.B) string { return testdb.PostgresURL(b) }})
	}
	for _, e := range engines {
		for _, run := range []struct{ chunk, parallel int }{{500, 1}, {1000, 1}, {500, 4}} {
			b.Run(fmt.Sprintf("%s/chunk=%d/parallel=%d", e.name, run.chunk, run.parallel), func(b *testing.B) {
				key, url := benchServer(b, bin, e.db(b))
				c := client.New(url, key)
				ids := map[string]int64{}
				for _, p := range ds.Products {
					prod, _, err := c.CreateProduct(context.Background(), licensor.NewProduct("Bench "+p))
					if err != nil {
						b.Fatal(err)
					}
					ids[p] = prod.ID
				}
				products := filepath.Join(b.TempDir(), "products.csv")
				if err := ds.WriteProducts(products, ids); err != nil {
					b.Fatal(err)
				}
				imported, i := 0, 0
				for b.Loop() {
					i++
					var out, errOut bytes.Buffer
					err := importLegacy(context.Background(), []string{"--url", url, "--key", key, "--users", ds.UsersFile,
						"--products", products, "--service", fmt.Sprintf("bench-%d-%d-%d", run.chunk, run.parallel, i),
						"--chunk", strconv.Itoa(run.chunk), "--parallel", strconv.Itoa(run.parallel), "--progress", "none", ds.Inputs},
						func(string) string { return "" }, strings.NewReader(""), &out, &errOut)
					if err != nil {
						b.Fatalf("%v\n%s", err, errOut.String())
					}
					imported += len(ds.Good)
				}
				b.ReportMetric(float64(imported)/b.Elapsed().Seconds(), "licenses/s")
			})
		}
	}
}

var (
	benchBuildOnce sync.Once
	benchBin       string
	benchBuildErr  error
)

// benchBinary builds the command for benchmarks (licensorBinary takes a
// *testing.T).
func benchBinary(b *testing.B) string {
	benchBuildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "licensor-bench")
		if err != nil {
			benchBuildErr = err
			return
		}
		benchBin = filepath.Join(dir, "licensor")
		if out, err := exec.Command("go", "build", "-o", benchBin, ".").CombinedOutput(); err != nil {
			benchBuildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if benchBuildErr != nil {
		b.Fatal(benchBuildErr)
	}
	return benchBin
}

// benchServer creates a key and starts a server on db, for the length of
// the benchmark.
func benchServer(b *testing.B, bin, db string) (key, url string) {
	out, err := exec.Command(bin, "keys", "create", "--name", "bench-"+strconv.FormatInt(time.Now().UnixNano(), 36), "--scope", "write", "--db", db).Output()
	if err != nil {
		b.Fatal(err)
	}
	key = strings.TrimSpace(string(out))
	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--db", db)
	cmd.Env = append(os.Environ(), "DATABASE_URL=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		var rec struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "licensor listening" {
			go func() { // keep draining the access log
				for sc.Scan() {
				}
			}()
			return key, "http://" + rec.Addr
		}
	}
	b.Fatal("licensor serve did not start")
	return "", ""
}

// recoveryServer is a server on one engine with one product (legacy
// product "1") and a users mapping of two users, for the tests of what
// the importer does with careless input.
type recoveryServer struct {
	url, key, users, products, dir string
	c                              *client.Client
}

func newRecoveryServer(t *testing.T, e testdb.Engine) *recoveryServer {
	t.Helper()
	db := e.URL(t)
	srv := startServer(t, db) // migrates the database
	key := createKey(t, db, "importer", "write")
	rs := &recoveryServer{url: srv.url, key: key, dir: t.TempDir(), c: client.New(srv.url, key)}
	prod, _, err := rs.c.CreateProduct(context.Background(), licensor.NewProduct("Legacy product 1"))
	if err != nil {
		t.Fatal(err)
	}
	rs.users = rs.write(t, "users.csv", []byte("email,user_id\nu@example.com,41\nmüller@example.com,42\n"))
	rs.products = rs.write(t, "products.csv", fmt.Appendf(nil, "legacy_product_id,product_id\n1,%d\n", prod.ID))
	return rs
}

func (rs *recoveryServer) write(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(rs.dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func (rs *recoveryServer) args(service string, extra ...string) []string {
	return append([]string{"--url", rs.url, "--key", rs.key, "--users", rs.users, "--products", rs.products,
		"--service", service, "--progress", "none"}, extra...)
}

// licenses returns the payment method of every license of a service, by
// order id, and the users.
func (rs *recoveryServer) licenses(t *testing.T, service string) (pm map[string]string, users map[string]string) {
	t.Helper()
	pm, users = map[string]string{}, map[string]string{}
	for l, err := range rs.c.AllLicenses(context.Background(), client.LicenseQuery{PageSize: 1000}) {
		if err != nil {
			t.Fatal(err)
		}
		if l.OrderID == nil || !strings.HasPrefix(*l.OrderID, "legacy:"+service+":") {
			continue
		}
		id := strings.TrimPrefix(*l.OrderID, "legacy:"+service+":")
		pm[id], users[id] = "", l.UserID
		if l.PaymentMethod != nil {
			pm[id] = *l.PaymentMethod
		}
	}
	return pm, users
}

// legacyJSON is a one-license legacy document on one line.
func legacyJSON(email, id, pm string) string {
	b, _ := json.Marshal(map[string]any{"email": email, "license": map[string]any{"licenseList": map[string]any{"licenses": []any{map[string]any{
		"id": id, "status": "active", "startDate": "2024-01-01 00:00:00", "stopDate": "2030-01-01 00:00:00",
		"purchaseDate": "2024-01-01 00:00:00", "currency": "EUR", "price": 1.5, "paymentMethod": pm,
		"productUrl": "https://boox.fi/api/user/x/product/1", "recurring": false}}}}})
	return string(b)
}

const legacyCSVHeader = "email,id,status,startDate,stopDate,purchaseDate,price,currency,paymentMethod,recurring,productId\n"

// legacyCSV is a CSV row; pm is written as it is (quote it yourself).
func legacyCSV(email, id, pm string) string {
	return email + "," + id + ",active,2024-01-01 00:00:00,2030-01-01 00:00:00,2024-01-01 00:00:00,1.50,EUR," + pm + ",false,1\n"
}

func utf16Of(s string, big bool) []byte {
	b := []byte{0xFF, 0xFE}
	if big {
		b = []byte{0xFE, 0xFF}
	}
	for _, u := range utf16.Encode([]rune(s)) {
		if big {
			b = append(b, byte(u>>8), byte(u))
		} else {
			b = append(b, byte(u), byte(u>>8))
		}
	}
	return b
}

// TestImportRecovery runs each careless input of issue 11 through the
// command against a real server, on every engine: every record is
// imported or listed as rejected, and the summary's check says so.
func TestImportRecovery(t *testing.T) {
	var docs41 strings.Builder
	want41 := map[string]string{}
	for i := 1; i <= 41; i++ {
		docs41.WriteString(legacyJSON("u@example.com", strconv.Itoa(i), "card") + "\n")
		want41[strconv.Itoa(i)] = "card"
	}
	var rows10 strings.Builder
	want10 := map[string]string{}
	for i := 1; i <= 10; i++ {
		rows10.WriteString(legacyCSV("u@example.com", strconv.Itoa(i), "card"))
		want10[strconv.Itoa(i)] = "card"
	}
	latin1 := []byte(legacyCSVHeader + legacyCSV("m\xfcller@example.com", "1", "carte bancaire \x80") + legacyCSV("u@example.com", "2", "d\xe9bit \x93x\x94"))
	utf16Text := legacyCSVHeader + legacyCSV("müller@example.com", "1", "débit 💳") + legacyCSV("u@example.com", "2", "card")
	for _, c := range []struct {
		name    string
		file    string
		content []byte
		flags   []string
		stdin   bool
		code    int            // exit status
		summary map[string]int // nil: no summary (refused before reading)
		want    map[string]string
		inErr   []string // in the error and standard error
	}{
		{"a cut-off line opening an array", "cutoff.jsonl", []byte(`[{"email":"u@example.com","license":` + "\n" + docs41.String()), nil, false,
			1, map[string]int{"read": 42, "imported": 41, "rejected": 1}, want41, []string{"rejected", "cutoff.jsonl:1: malformed JSON: the document starting at line 1 does not end before line 2"}},
		{"Latin-1 CSV refused", "latin1.csv", latin1, nil, false,
			2, nil, map[string]string{}, []string{"latin1.csv:2: byte 0xFC is not UTF-8", "--encoding latin1"}},
		{"Latin-1 CSV with --encoding latin1", "latin1.csv", latin1, []string{"--encoding", "latin1"}, false,
			0, map[string]int{"read": 2, "imported": 2, "rejected": 0}, map[string]string{"1": "carte bancaire €", "2": "débit “x”"}, []string{"inputs by encoding: Latin-1 (Windows-1252) 1"}},
		{"Latin-1 on standard input", "-", latin1, []string{"--format", "csv"}, true,
			1, map[string]int{"read": 0}, map[string]string{}, []string{"-:2: byte 0xFC is not UTF-8", "--encoding latin1"}},
		{"UTF-8 with --encoding latin1 refused", "utf8.csv", []byte(utf16Text), []string{"--encoding", "latin1"}, false,
			2, nil, map[string]string{}, []string{"utf8.csv:2: the file is valid UTF-8", "leave out --encoding latin1"}},
		{"UTF-16LE", "utf16le.csv", utf16Of(utf16Text, false), nil, false,
			0, map[string]int{"read": 2, "imported": 2}, map[string]string{"1": "débit 💳", "2": "card"}, []string{"UTF-16LE (byte order mark) 1"}},
		{"UTF-16BE", "utf16be.csv", utf16Of(utf16Text, true), nil, false,
			0, map[string]int{"read": 2, "imported": 2}, map[string]string{"1": "débit 💳", "2": "card"}, []string{"UTF-16BE (byte order mark) 1"}},
		{"UTF-16 JSON", "utf16.json", utf16Of(legacyJSON("u@example.com", "1", "carte")+"\n", false), nil, false,
			0, map[string]int{"read": 1, "imported": 1}, map[string]string{"1": "carte"}, nil},
		{"UTF-8 with a byte order mark", "bom.csv", []byte("\ufeff" + utf16Text), nil, false,
			0, map[string]int{"read": 2, "imported": 2}, map[string]string{"1": "débit 💳", "2": "card"}, []string{"UTF-8 (byte order mark) 1"}},
		{"UTF-16 without a byte order mark", "nobom.csv", utf16Of(utf16Text, false)[2:], nil, false,
			2, nil, map[string]string{}, []string{"looks like UTF-16LE without a byte order mark", "--encoding utf-16le"}},
		{"a line break in paymentMethod (JSON)", "newline.jsonl", []byte(legacyJSON("u@example.com", "1", "card\nvisa") + "\n" + legacyJSON("u@example.com", "2", strings.Repeat("é", 64)) + "\n"), nil, false,
			0, map[string]int{"read": 2, "imported": 2}, map[string]string{"1": "card\nvisa", "2": strings.Repeat("é", 64)}, nil},
		{"a line break in paymentMethod (CSV)", "newline.csv", []byte(legacyCSVHeader + legacyCSV("u@example.com", "1", "\"card\nvisa\"") + legacyCSV("u@example.com", "2", "x")), nil, false,
			0, map[string]int{"read": 2, "imported": 2}, map[string]string{"1": "card\nvisa", "2": "x"}, nil},
		{"NUL and a lone surrogate in paymentMethod", "nul.jsonl", []byte(legacyJSON("u@example.com", "1", "card\x00") + "\n" + strings.Replace(legacyJSON("u@example.com", "2", "cardX"), "X", `\ud800`, 1) + "\n" + legacyJSON("u@example.com", "3", "ok") + "\n"), nil, false,
			1, map[string]int{"read": 3, "imported": 1, "rejected": 2}, map[string]string{"3": "ok"}, []string{"nul.jsonl:1#0: paymentMethod \"card\\x00\" contains a NUL character", `nul.jsonl:2#0: paymentMethod escapes the UTF-16 high surrogate \ud800`}},
		{"an unterminated CSV quote", "quote.csv", []byte(legacyCSVHeader + legacyCSV("u@example.com", "0", `"card`) + rows10.String()), nil, false,
			1, map[string]int{"read": 11, "imported": 10, "rejected": 1}, want10, []string{"quote.csv:2: malformed CSV: a quoted field opened on line 2 is not closed", "reading resumes at line 3"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
				rs := newRecoveryServer(t, e)
				service := "t" + strconv.FormatInt(time.Now().UnixNano(), 36)
				input, stdin := c.file, ""
				if c.stdin {
					stdin = string(c.content)
				} else {
					input = rs.write(t, c.file, c.content)
				}
				out, errOut, err := importRun(context.Background(), stdin, rs.args(service, append(c.flags, input)...)...)
				code := 0
				if err != nil {
					code = exitCode(err)
				}
				if code != c.code {
					t.Fatalf("exit status %d (%v), want %d\n%s%s", code, err, c.code, out, errOut)
				}
				all := errOut
				if err != nil {
					all += err.Error()
				}
				for _, w := range c.inErr {
					if !strings.Contains(all, w) {
						t.Errorf("standard error and error lack %q:\n%s", w, all)
					}
				}
				if c.summary != nil {
					wantSummary(t, out, c.summary)
					check := "check:           ok: read "
					if c.stdin {
						check = "check:           incomplete: the import stopped before the end of its input"
					}
					if !strings.Contains(out, check) {
						t.Errorf("no %q line:\n%s", check, out)
					}
				}
				pm, users := rs.licenses(t, service)
				if !reflect.DeepEqual(pm, c.want) {
					t.Errorf("licenses on the server (by legacy id → payment method) %q, want %q", pm, c.want)
				}
				if _, ok := c.want["1"]; ok && strings.Contains(string(c.content), "ller@") && users["1"] != "42" {
					t.Errorf("license 1 belongs to %q, want 42 (müller@example.com)", users["1"])
				}
			})
		})
	}
}

// TestImportTimezoneRerun: a rerun with another --timezone, which converts
// the dates differently, reports each record as a conflict (naming the
// dates) instead of "already present"; a rerun with the first zone and
// another --chunk (other batches, so no idempotent replay) finds them all
// present by comparing.
func TestImportTimezoneRerun(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		rs := newRecoveryServer(t, e)
		var b strings.Builder
		for i := 1; i <= 30; i++ {
			b.WriteString(legacyJSON("u@example.com", strconv.Itoa(i), "card") + "\n")
		}
		input := rs.write(t, "in.jsonl", []byte(b.String()))
		run := func(extra ...string) (string, string, error) {
			return importRun(context.Background(), "", rs.args("tz", append(extra, input)...)...)
		}
		out, errOut, err := run("--timezone", "Europe/Helsinki")
		if err != nil {
			t.Fatalf("first import: %v\n%s", err, errOut)
		}
		wantSummary(t, out, map[string]int{"read": 30, "imported": 30})

		rejects := filepath.Join(rs.dir, "rejects.jsonl")
		out, errOut, err = run("--timezone", "UTC", "--reject-file", rejects)
		if exitCode(err) != 1 || !strings.Contains(err.Error(), "30 of 30 records rejected") {
			t.Fatalf("rerun in UTC: %v\n%s%s", err, out, errOut)
		}
		wantSummary(t, out, map[string]int{"read": 30, "imported": 0, "already present": 0, "rejected": 30})
		if !strings.Contains(out, "of which conflicts: 30") || !strings.Contains(errOut, "rerun it with that one") {
			t.Errorf("conflicts not reported:\n%s%s", out, errOut)
		}
		text, _ := os.ReadFile(rejects)
		// 2024-01-01 00:00:00 is 1704060000 in Helsinki (UTC+2), 1704067200 in UTC.
		want := "which differs from this record: start_date 1704060000 (2023-12-31 22:00:00Z) there, 1704067200 (2024-01-01 00:00:00Z) here"
		if n := strings.Count(string(text), want); n != 30 {
			t.Errorf("%d rejects name the start dates, want 30:\n%.600s", n, text)
		}

		out, errOut, err = run("--timezone", "Europe/Helsinki", "--chunk", "7")
		if err != nil {
			t.Fatalf("rerun in Helsinki: %v\n%s%s", err, out, errOut)
		}
		wantSummary(t, out, map[string]int{"read": 30, "imported": 0, "already present": 30, "rejected": 0})
	})
}

// corruptFile is a generated legacy file: its units (lines, documents or
// array elements, each to be corrupted or not), how they are joined, and
// the records of each unit by legacy id → payment method.
type corruptFile struct {
	name          string
	prefix, sep   string
	suffix        string
	units         []string
	records       []map[string]string
	csv           bool
	intactRecords map[string]string
}

// TestImportCorruptionProperty generates legacy files in every layout
// (JSON Lines, pretty-printed documents, arrays an element a line, indented
// arrays, CSV) and every encoding the importer detects, breaks random
// units of them (cut off, a quote inserted, a bracket or comma deleted,
// an unterminated CSV quote, a line break in a CSV row) so that a
// reference parser no longer reads them, and imports them: the check adds
// up, every rejected record is listed, every record of an intact unit is
// imported exactly as written, and nothing else is.
func TestImportCorruptionProperty(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		rs := newRecoveryServer(t, e)
		seeds := 8
		if e.Name != "sqlite" || testing.Short() {
			seeds = 3
		}
		for seed := 1; seed <= seeds; seed++ {
			rnd := mrand.New(mrand.NewPCG(uint64(seed), 11))
			service := "prop" + strconv.Itoa(seed)
			dir := filepath.Join(rs.dir, service)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			files := corruptionFiles(rnd)
			want := map[string]string{}
			broken := 0
			for i, f := range files {
				f.corrupt(t, rnd)
				for id, pm := range f.intactRecords {
					want[id] = pm
				}
				for k := range f.units {
					if f.intactRecords != nil && len(f.records[k]) > 0 {
						if _, ok := f.intactRecords[firstKey(f.records[k])]; !ok {
							broken++
						}
					}
				}
				text := f.prefix + strings.Join(f.units, f.sep) + f.suffix
				var b []byte
				switch rnd.IntN(4) {
				case 0:
					b = []byte(text)
				case 1:
					b = append([]byte("\ufeff"), text...)
				case 2:
					b = utf16Of(text, false)
				default:
					b = utf16Of(text, true)
				}
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%02d-%s", i, f.name)), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			rejects := filepath.Join(rs.dir, service+".rejects")
			out, errOut, err := importRun(context.Background(), "", rs.args(service, "--reject-file", rejects, "--chunk", strconv.Itoa(1+rnd.IntN(50)), dir)...)
			if broken > 0 && exitCode(err) != 1 {
				t.Fatalf("seed %d: %v\n%s%s", seed, err, out, errOut)
			}
			got := summaryOf(t, out)
			if got["read"] != got["imported"]+got["already present"]+got["rejected"] || !strings.Contains(out, "check:           ok: read") {
				t.Errorf("seed %d: the counts do not add up:\n%s", seed, out)
			}
			text, _ := os.ReadFile(rejects)
			if n := bytes.Count(text, []byte("\n")); n != got["rejected"] {
				t.Errorf("seed %d: %d rejects listed, %d counted", seed, n, got["rejected"])
			}
			pm, _ := rs.licenses(t, service)
			for id, p := range want {
				if q, ok := pm[id]; !ok || q != p {
					t.Errorf("seed %d: intact record %s: imported %v with %q, want %q", seed, id, ok, q, p)
				}
			}
			for id := range pm {
				if _, ok := want[id]; !ok {
					t.Errorf("seed %d: record %s of a broken unit was imported", seed, id)
				}
			}
			if got["imported"] != len(want) {
				t.Errorf("seed %d: %d imported, want the %d records of intact units", seed, got["imported"], len(want))
			}
			t.Logf("seed %d: %d records read, %d imported, %d rejected; %d units broken", seed, got["read"], got["imported"], got["rejected"], broken)
		}
	})
}

func firstKey(m map[string]string) string {
	for k := range m {
		return k
	}
	return ""
}

// corruptionFiles generates one file of each layout.
func corruptionFiles(rnd *mrand.Rand) []*corruptFile {
	next := 0
	methods := []string{"card", "credit card", "débit", "carte, bancaire", "say \"hi\"", "line\nbreak", "💳 wallet", "x"}
	lics := func(n int) (map[string]string, []any) {
		recs := map[string]string{}
		var out []any
		for range n {
			next++
			id, pm := strconv.Itoa(next), methods[rnd.IntN(len(methods))]
			recs[id] = pm
			out = append(out, map[string]any{"id": id, "status": "active", "startDate": "2024-01-01 00:00:00", "stopDate": "2030-01-01 00:00:00",
				"purchaseDate": "2024-01-01 00:00:00", "currency": "EUR", "price": 1.5, "paymentMethod": pm,
				"productUrl": "https://boox.fi/api/user/x/product/1", "recurring": false})
		}
		return recs, out
	}
	document := func() (map[string]string, map[string]any) {
		recs, l := lics(1 + rnd.IntN(3))
		return recs, map[string]any{"email": "u@example.com", "license": map[string]any{"licenseList": map[string]any{"licenses": l}}}
	}
	var files []*corruptFile
	// JSON Lines.
	f := &corruptFile{name: "lines.jsonl", sep: "\n", suffix: "\n"}
	for range 40 {
		recs, d := document()
		b, _ := json.Marshal(d)
		f.units, f.records = append(f.units, string(b)), append(f.records, recs)
	}
	files = append(files, f)
	// Pretty-printed documents.
	f = &corruptFile{name: "pretty.json", sep: "\n", suffix: "\n"}
	for range 15 {
		recs, d := document()
		b, _ := json.MarshalIndent(d, "", "  ")
		f.units, f.records = append(f.units, string(b)), append(f.records, recs)
	}
	files = append(files, f)
	// An array, an element a line.
	f = &corruptFile{name: "array-lines.json", prefix: "[\n", sep: ",\n", suffix: "\n]\n"}
	for range 20 {
		recs, d := document()
		b, _ := json.Marshal(d)
		f.units, f.records = append(f.units, string(b)), append(f.records, recs)
	}
	files = append(files, f)
	// An indented array.
	f = &corruptFile{name: "array-pretty.json", prefix: "[\n", sep: ",\n", suffix: "\n]\n"}
	for range 15 {
		recs, d := document()
		b, _ := json.MarshalIndent(d, "  ", "  ")
		f.units, f.records = append(f.units, "  "+string(b)), append(f.records, recs)
	}
	files = append(files, f)
	// CSV.
	f = &corruptFile{name: "rows.csv", prefix: legacyCSVHeader, sep: "", csv: true}
	for range 60 {
		recs, _ := lics(1)
		id := firstKey(recs)
		pm := recs[id]
		if strings.ContainsAny(pm, ",\"\n") {
			pm = `"` + strings.ReplaceAll(pm, `"`, `""`) + `"`
		}
		f.units, f.records = append(f.units, legacyCSV("u@example.com", id, pm)), append(f.records, recs)
	}
	files = append(files, f)
	return files
}

// corrupt breaks about one unit in six so that a reference parser
// (encoding/json, encoding/csv) refuses it, and notes the records of the
// units left intact.
func (f *corruptFile) corrupt(t *testing.T, rnd *mrand.Rand) {
	f.intactRecords = map[string]string{}
	for k, u := range f.units {
		if rnd.IntN(6) != 0 {
			for id, pm := range f.records[k] {
				f.intactRecords[id] = pm
			}
			continue
		}
		for try := 0; ; try++ {
			if try == 100 {
				t.Fatalf("cannot break unit %q", u)
			}
			c := breakUnit(u, f.csv, rnd)
			if c != u && !f.readable(c) {
				f.units[k] = c
				break
			}
		}
	}
}

func breakUnit(u string, isCSV bool, rnd *mrand.Rand) string {
	p := 1 + rnd.IntN(len(u)-1)
	for !utf8.RuneStart(u[p]) { // break text, not characters
		p--
	}
	switch rnd.IntN(5) {
	case 0: // cut off
		if isCSV {
			return u[:p] + "\n"
		}
		return u[:p]
	case 1: // a stray quote
		return u[:p] + `"` + u[p:]
	case 2: // a bracket or comma less
		chars := "{}[]"
		if isCSV {
			chars = ","
		}
		var at []int
		for i := range len(u) {
			if strings.IndexByte(chars, u[i]) >= 0 {
				at = append(at, i)
			}
		}
		if len(at) == 0 {
			return u
		}
		i := at[rnd.IntN(len(at))]
		return u[:i] + u[i+1:]
	case 3: // CSV: a quote opening a field that never closes; JSON: garbage
		if isCSV {
			fields := strings.Split(u, ",")
			i := rnd.IntN(len(fields))
			fields[i] = `"` + fields[i]
			return strings.Join(fields, ",")
		}
		return u[:p] + "#!" + u[p:]
	default: // CSV: a line break in the row; JSON: a bracket more
		if isCSV {
			return u[:p] + "\n" + u[p:]
		}
		return u[:p] + "[" + u[p:]
	}
}

// readable reports whether a reference parser still reads a unit as
// records of the right shape.
func (f *corruptFile) readable(u string) bool {
	if !f.csv {
		return json.Valid([]byte(u))
	}
	r := csv.NewReader(strings.NewReader(legacyCSVHeader + u))
	r.FieldsPerRecord = strings.Count(legacyCSVHeader, ",") + 1
	recs, err := r.ReadAll()
	return err == nil && len(recs) == 2
}
