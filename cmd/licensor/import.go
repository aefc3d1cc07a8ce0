package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	_ "time/tzdata" // --timezone must not depend on the host's zone files

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/client"
	"github.com/licensor/licensor/internal/legacy"
)

const importUsage = "usage: licensor import legacy [flags] [FILE|DIR|-]..."

// runImport is "licensor import": only "import legacy" exists.
func runImport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "legacy" {
		return usageError{importUsage}
	}
	return importLegacy(ctx, args[1:], getenv, os.Stdin, stdout, stderr)
}

// importConfig is everything "import legacy" can be told.
type importConfig struct {
	url, key         string
	usersFile        string
	productsFile     string
	loc              *time.Location
	service          string
	format           legacy.Format
	encoding         legacy.Encoding
	chunk            int
	parallel         int
	rejectFile       string
	dryRun           bool
	progress         string // bar, plain or none
	progressInterval time.Duration
	retries          int
	retryWait        time.Duration
	requestTimeout   time.Duration
	idempotencySalt  string
	inputs           []legacy.Input
}

// MaxImportChunk is the largest --chunk: the server's default batch limit.
const MaxImportChunk = licensor.DefaultMaxBatch

func parseImportFlags(args []string, getenv func(string) string, stderr io.Writer) (*importConfig, error) {
	fs := newFlagSet("import legacy", stderr)
	cfg := &importConfig{}
	fs.StringVar(&cfg.url, "url", envOr(getenv, "LICENSOR_URL", "http://localhost:8080"), "base URL of the licensor server (env LICENSOR_URL)")
	fs.StringVar(&cfg.key, "key", getenv("LICENSOR_API_KEY"), "API key with the write scope (env LICENSOR_API_KEY); with --dry-run, optional (a read key checks the products)")
	fs.StringVar(&cfg.usersFile, "users", "", "users mapping, CSV with the header email,user_id (required)")
	fs.StringVar(&cfg.productsFile, "products", "", "products mapping, CSV with the header legacy_product_id,product_id (required)")
	zone := fs.String("timezone", "UTC", "IANA time zone of the legacy local times (Europe/Helsinki)")
	fs.StringVar(&cfg.service, "service", "legacy", "legacy service name, part of every order_id: legacy:<service>:<legacy id>")
	format := fs.String("format", "auto", "input format: json, csv, or auto (by file extension, else by content)")
	encoding := fs.String("encoding", "auto", "character encoding of the inputs: auto (UTF-8, with or without a byte order mark, or UTF-16 with one), utf-8, utf-16le, utf-16be, or latin1 (ISO-8859-1 read as Windows-1252)")
	fs.IntVar(&cfg.chunk, "chunk", 500, fmt.Sprintf("licenses per batch request (1 to %d)", MaxImportChunk))
	fs.IntVar(&cfg.parallel, "parallel", 1, "batch requests in flight at once (1 to 16); more helps a PostgreSQL server, not a SQLite one")
	fs.StringVar(&cfg.rejectFile, "reject-file", "", "write every rejected record to this file, as JSON lines {source, record, reason}")
	fs.BoolVar(&cfg.dryRun, "dry-run", false, "validate everything and write nothing (the server is only asked whether the products exist, and only with --key)")
	fs.StringVar(&cfg.progress, "progress", "auto", "progress display: bar, plain (a line every --progress-interval), none, or auto (bar on a terminal, plain otherwise)")
	fs.DurationVar(&cfg.progressInterval, "progress-interval", 10*time.Second, "time between plain progress lines")
	fs.IntVar(&cfg.retries, "retries", 6, "retries of a batch that failed for a passing reason (network, 429, 5xx) before giving up")
	fs.DurationVar(&cfg.retryWait, "retry-wait", 500*time.Millisecond, "first wait before a retry; it doubles up to 30s (a Retry-After from the server wins)")
	fs.DurationVar(&cfg.requestTimeout, "request-timeout", 2*time.Minute, "time limit of one request")
	fs.StringVar(&cfg.idempotencySalt, "idempotency-salt", "", "mixed into every batch's Idempotency-Key: set a new value to re-import, within the server's idempotency TTL, data whose licenses were deleted (the server would replay its first answers)")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	var err error
	switch {
	case cfg.usersFile == "":
		return nil, usageError{"--users is required: a CSV file with the header email,user_id"}
	case cfg.productsFile == "":
		return nil, usageError{"--products is required: a CSV file with the header legacy_product_id,product_id"}
	case cfg.chunk < 1 || cfg.chunk > MaxImportChunk:
		return nil, usageError{fmt.Sprintf("--chunk must be 1 to %d", MaxImportChunk)}
	case cfg.parallel < 1 || cfg.parallel > 16:
		return nil, usageError{"--parallel must be 1 to 16"}
	case !legacy.ValidService(cfg.service):
		return nil, usageError{"--service must be 1 to 64 characters of A-Z a-z 0-9 . _ -"}
	case cfg.retries < 0 || cfg.retryWait <= 0 || cfg.requestTimeout <= 0 || cfg.progressInterval <= 0:
		return nil, usageError{"--retries must not be negative; --retry-wait, --request-timeout and --progress-interval must be positive"}
	case !cfg.dryRun && cfg.key == "":
		return nil, usageError{"--key (or LICENSOR_API_KEY) is required: an API key with the write scope"}
	case fs.NArg() == 0:
		return nil, usageError{"no input: name legacy files, directories of them, or - for standard input; " + importUsage}
	}
	if cfg.loc, err = time.LoadLocation(*zone); err != nil || *zone == "" || *zone == "Local" {
		return nil, usageError{fmt.Sprintf("--timezone %q is not an IANA time zone name (like UTC or Europe/Helsinki)", *zone)}
	}
	switch f := legacy.Format(*format); f {
	case legacy.FormatAuto, legacy.FormatJSON, legacy.FormatCSV:
		cfg.format = f
	default:
		return nil, usageError{"--format must be json, csv or auto"}
	}
	var ok bool
	if cfg.encoding, ok = legacy.ParseEncoding(*encoding); !ok {
		return nil, usageError{"--encoding must be auto, utf-8, utf-16le, utf-16be or latin1"}
	}
	switch cfg.progress {
	case "auto", "bar", "plain", "none":
	default:
		return nil, usageError{"--progress must be auto, bar, plain or none"}
	}
	if cfg.inputs, err = legacy.Inputs(fs.Args(), cfg.format); err != nil {
		return nil, usageError{"input: " + err.Error()}
	}
	if cfg.rejectFile != "" {
		for _, in := range cfg.inputs {
			if in.Path != "-" && samePath(in.Path, cfg.rejectFile) {
				return nil, usageError{fmt.Sprintf("--reject-file %s is also an input; write it elsewhere", cfg.rejectFile)}
			}
		}
	}
	return cfg, nil
}

// samePath reports whether two paths name the same file.
func samePath(a, b string) bool {
	if ai, err := os.Stat(a); err == nil {
		if bi, err := os.Stat(b); err == nil {
			return os.SameFile(ai, bi)
		}
	}
	aa, err1 := filepath.Abs(a)
	ba, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && aa == ba
}

// importStats are the counts of a run. They are atomic because the
// progress display reads them while the import writes them.
type importStats struct {
	read, imported, present, rejected, valid atomic.Int64
	conflicts                                atomic.Int64 // of rejected: order ids held by a different license
	listed                                   atomic.Int64 // rejects written out (reject file or standard error)
	bytes                                    atomic.Int64 // input bytes consumed
}

// done is the number of records whose fate is decided.
func (s *importStats) done() int64 {
	return s.imported.Load() + s.present.Load() + s.rejected.Load() + s.valid.Load()
}

// importer is one run of "import legacy".
type importer struct {
	cfg      *importConfig
	conv     *legacy.Converter
	client   *client.Client // nil in a dry run without a key
	stats    importStats
	progress *progress
	stderr   io.Writer

	rejectMu  sync.Mutex    // the senders reject too
	rejects   *json.Encoder // nil without --reject-file
	rejectBuf *bufio.Writer

	products map[int64]bool // v4 product id → exists on the server

	encMu     sync.Mutex
	encodings map[legacy.Detected]int // inputs read in each encoding
}

func importLegacy(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	cfg, err := parseImportFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	users, err := readMapping(cfg.usersFile, legacy.ReadUsers)
	if err != nil {
		return usageError{"--users: " + err.Error()}
	}
	products, err := readMapping(cfg.productsFile, legacy.ReadProducts)
	if err != nil {
		return usageError{"--products: " + err.Error()}
	}
	conv, err := legacy.NewConverter(users, products, cfg.loc, cfg.service)
	if err != nil {
		return usageError{err.Error()}
	}
	// Every named file must be readable in its encoding, to the end, and a
	// CSV file must have a good header, before anything is written.
	for _, in := range cfg.inputs {
		if in.Path == "-" {
			continue
		}
		if err := checkInput(in, cfg.encoding); err != nil {
			return usageError{"input: " + err.Error()}
		}
	}

	im := &importer{cfg: cfg, conv: conv, stderr: stderr, products: map[int64]bool{}, encodings: map[legacy.Detected]int{}}
	if cfg.key != "" {
		hc := &http.Client{Timeout: cfg.requestTimeout, Transport: replayTransport{http.DefaultTransport}}
		im.client = client.New(cfg.url, cfg.key, client.WithHTTPClient(hc), client.WithUserAgent("licensor-import/"+versionString()))
	}
	var rejectFile *os.File
	if cfg.rejectFile != "" {
		if rejectFile, err = os.Create(cfg.rejectFile); err != nil {
			return usageError{"--reject-file: " + err.Error()}
		}
		defer rejectFile.Close() // on a panic; closed and checked below
		im.rejectBuf = bufio.NewWriter(rejectFile)
		im.rejects = json.NewEncoder(im.rejectBuf)
		im.rejects.SetEscapeHTML(false)
	}

	var total int64
	for _, in := range cfg.inputs {
		if in.Size < 0 {
			total = -1
			break
		}
		total += in.Size
	}
	im.progress = newProgress(stderr, cfg.progress, cfg.progressInterval, total, &im.stats, cfg.dryRun)
	started := time.Now()
	im.progress.start()
	runErr := im.run(ctx, stdin)
	im.progress.stop()
	if rejectFile != nil {
		err := im.rejectBuf.Flush()
		if cerr := rejectFile.Close(); err == nil {
			err = cerr
		}
		if err != nil && runErr == nil {
			runErr = fmt.Errorf("write %s: %w", cfg.rejectFile, err)
		}
	}
	balanced := im.summary(stdout, time.Since(started), runErr != nil)

	s := &im.stats
	switch {
	case runErr != nil:
		return runErr
	case !balanced:
		return fmt.Errorf("import legacy: the counts do not add up (see the check above): records were lost; please report this")
	case s.rejected.Load() > 0:
		where := "the reasons are above"
		if cfg.rejectFile != "" {
			where = "see " + cfg.rejectFile
		}
		return fmt.Errorf("import legacy: %d of %d records rejected (%s)", s.rejected.Load(), s.read.Load(), where)
	}
	return nil
}

func readMapping[T any](path string, read func(io.Reader, string) (map[string]T, error)) (map[string]T, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return read(bufio.NewReader(f), path)
}

var errStopReading = errors.New("stop reading")

// checkInput reads a named input through to the end in its encoding, and
// a CSV input's header.
func checkInput(in legacy.Input, enc legacy.Encoding) error {
	f, err := os.Open(in.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := legacy.CheckEncoding(bufio.NewReaderSize(f, 64<<10), in.Path, enc); err != nil {
		return err
	}
	_, err = readInput(in, enc, nil, nil, func(*legacy.Record) error { return errStopReading })
	if errors.Is(err, errStopReading) {
		return nil
	}
	return err
}

// readInput reads one input, counting the bytes consumed into n (when not
// nil), and reports its encoding.
func readInput(in legacy.Input, enc legacy.Encoding, stdin io.Reader, n *atomic.Int64, emit func(*legacy.Record) error) (legacy.Detected, error) {
	var r io.Reader = stdin
	if in.Path != "-" {
		f, err := os.Open(in.Path)
		if err != nil {
			return "", err
		}
		defer f.Close()
		r = f
	}
	if n != nil {
		r = &countingReader{r: r, n: n}
	}
	return legacy.ReadEncoded(r, in.Path, in.Format, enc, emit)
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// item is a record on its way to the server.
type item struct {
	rec   *legacy.Record
	draft licensor.LicenseDraft
}

// run reads every input, converts, and sends the good records in chunks,
// --parallel at a time, while the next chunks are read and converted. It
// stops after the chunks in flight when ctx is cancelled or a chunk fails.
func (im *importer) run(ctx context.Context, stdin io.Reader) error {
	records := make(chan *legacy.Record, 1024)
	readErr := make(chan error, 1)
	quit := make(chan struct{})
	go func() {
		defer close(records)
		for _, in := range im.cfg.inputs {
			det, err := readInput(in, im.cfg.encoding, stdin, &im.stats.bytes, func(r *legacy.Record) error {
				select {
				case records <- r:
					return nil
				case <-quit:
					return errStopReading
				}
			})
			if det != "" {
				im.encMu.Lock()
				im.encodings[det]++
				im.encMu.Unlock()
			}
			if err != nil {
				if !errors.Is(err, errStopReading) {
					readErr <- err
				}
				return
			}
		}
	}()
	defer func() {
		close(quit)
		for range records { // let the reader finish
		}
	}()

	// The senders. The first failure stops the dispatch of new chunks.
	sending, stopSending := context.WithCancel(ctx)
	defer stopSending()
	var (
		sendErr  error
		failOnce sync.Once
		senders  sync.WaitGroup
	)
	work := make(chan []item)
	for range im.cfg.parallel {
		senders.Go(func() {
			for chunk := range work {
				if err := im.send(ctx, chunk); err != nil {
					failOnce.Do(func() { sendErr = err })
					stopSending()
				}
			}
		})
	}
	dispatch := func(chunk []item) bool {
		select {
		case work <- chunk:
			return true
		case <-sending.Done():
			return false
		}
	}
	finish := func(err error) error {
		close(work)
		senders.Wait()
		switch {
		case sendErr != nil:
			return sendErr
		case err != nil:
			return err
		case ctx.Err() != nil:
			return im.interrupted()
		}
		return nil
	}

	chunk := make([]item, 0, im.cfg.chunk)
	for rec := range records {
		if sending.Err() != nil {
			return finish(nil)
		}
		im.stats.read.Add(1)
		d, err := im.conv.Convert(rec)
		if err == nil {
			err = im.checkProduct(ctx, d.ProductID)
		}
		if err != nil {
			var rej *legacy.Rejection
			if !errors.As(err, &rej) {
				return finish(err)
			}
			if err := im.reject(rec, rej.Error()); err != nil {
				return finish(err)
			}
			continue
		}
		if im.cfg.dryRun {
			im.stats.valid.Add(1)
			continue
		}
		chunk = append(chunk, item{rec, d})
		if len(chunk) == im.cfg.chunk {
			if !dispatch(chunk) {
				return finish(nil)
			}
			chunk = make([]item, 0, im.cfg.chunk)
		}
	}
	select {
	case err := <-readErr:
		return finish(err)
	default:
	}
	if len(chunk) > 0 && sending.Err() == nil {
		dispatch(chunk)
	}
	return finish(nil)
}

func (im *importer) interrupted() error {
	left := im.stats.read.Load() - im.stats.done()
	return fmt.Errorf("import legacy: interrupted; %d records read but not sent, and the rest not read: run the same command again to finish (licenses already imported are recognised by their order_id)", left)
}

// checkProduct asks the server once per product whether it exists. It
// returns a *legacy.Rejection when it does not. In a dry run without a key
// it checks nothing.
func (im *importer) checkProduct(ctx context.Context, id int64) error {
	if im.client == nil {
		return nil
	}
	exists, ok := im.products[id]
	if !ok {
		_, _, err := im.client.Product(context.WithoutCancel(ctx), id)
		switch {
		case err == nil:
			exists = true
		case licensor.ErrorCode(err) == licensor.CodeProductNotFound:
			exists = false
		default:
			return fmt.Errorf("import legacy: checking product %d: %w", id, err)
		}
		im.products[id] = exists
	}
	if !exists {
		return &legacy.Rejection{Problems: []string{fmt.Sprintf("product %d (from the products mapping) does not exist on the server", id)}}
	}
	return nil
}

// rejectLine is one line of the reject file.
type rejectLine struct {
	Source string          `json:"source"`
	Record json.RawMessage `json:"record"`
	Reason string          `json:"reason"`
}

func (im *importer) reject(rec *legacy.Record, reason string) error {
	im.rejectMu.Lock()
	defer im.rejectMu.Unlock()
	im.stats.rejected.Add(1)
	if im.rejects == nil {
		im.progress.println(fmt.Sprintf("rejected %s: %s", rec.Source, reason))
		im.stats.listed.Add(1)
		return nil
	}
	raw := rec.Raw
	if !json.Valid(raw) {
		raw = json.RawMessage("null")
	}
	if err := im.rejects.Encode(rejectLine{Source: rec.Source, Record: raw, Reason: reason}); err != nil {
		return fmt.Errorf("write %s: %w", im.cfg.rejectFile, err)
	}
	im.stats.listed.Add(1)
	return nil
}

// send creates the licenses of one chunk. Items whose order_id is taken
// are already present; items the server refuses for themselves are
// rejected; the rest are sent again until none is left. Passing failures
// (network, 429, 5xx) are retried; anything else ends the import.
//
// The request is not cancelled by ctx: an interrupt lets it finish.
func (im *importer) send(ctx context.Context, items []item) error {
	if ctx.Err() != nil {
		return im.interrupted()
	}
	attempt := 0
	for len(items) > 0 {
		drafts := make([]licensor.LicenseDraft, len(items))
		for i := range items {
			drafts[i] = items[i].draft
		}
		replayed := new(atomic.Bool)
		rctx := context.WithValue(context.WithoutCancel(ctx), replayKey{}, replayed)
		_, err := im.client.CreateLicenses(rctx, drafts, client.WithIdempotencyKey(idempotencyKey(im.cfg.idempotencySalt, drafts)))
		if err == nil {
			if replayed.Load() {
				im.stats.present.Add(int64(len(items))) // created by an earlier run
			} else {
				im.stats.imported.Add(int64(len(items)))
			}
			return nil
		}
		var ce *client.Error
		if errors.As(err, &ce) {
			if perItem, ok := itemErrors(ce, len(items)); ok {
				keep := items[:0:0]
				for i, it := range items {
					switch errs := perItem[i]; {
					case len(errs) == 0:
						keep = append(keep, it)
					case allConflicts(errs):
						// The order id is taken: by this very record from an
						// earlier run, or by something else.
						diff, err := im.compareExisting(ctx, it, errs)
						if err != nil {
							return err
						}
						if diff == "" {
							im.stats.present.Add(1)
							break
						}
						im.stats.conflicts.Add(1)
						if err := im.reject(it.rec, diff); err != nil {
							return err
						}
					default:
						if err := im.reject(it.rec, "refused by the server: "+describe(errs)); err != nil {
							return err
						}
					}
				}
				items, attempt = keep, 0
				continue
			}
		}
		if !retryable(err) || attempt >= im.cfg.retries {
			return fmt.Errorf("import legacy: batch of %d licenses (first %s): %w", len(items), items[0].rec.Source, explain(err))
		}
		wait := im.cfg.retryWait << attempt
		if ce != nil && ce.RetryAfter > 0 {
			wait = ce.RetryAfter
		}
		wait = min(wait, 30*time.Second)
		attempt++
		im.progress.println(fmt.Sprintf("batch failed (%v); retry %d of %d in %s", err, attempt, im.cfg.retries, wait.Round(time.Millisecond)))
		select {
		case <-ctx.Done():
			return im.interrupted()
		case <-time.After(wait):
		}
	}
	return nil
}

// itemErrors sorts the error objects of a failed batch by item. It reports
// false when some object is not about one item (the whole request failed).
func itemErrors(ce *client.Error, n int) ([][]client.ErrorObject, bool) {
	per := make([][]client.ErrorObject, n)
	for _, o := range ce.Errors {
		i, ok := o.Index()
		if !ok || i >= n {
			return nil, false
		}
		per[i] = append(per[i], o)
	}
	return per, true
}

func allConflicts(errs []client.ErrorObject) bool {
	for _, o := range errs {
		if o.Code != licensor.CodeOrderIDConflict {
			return false
		}
	}
	return true
}

func describe(errs []client.ErrorObject) string {
	parts := make([]string, len(errs))
	for i, o := range errs {
		parts[i] = string(o.Code)
		if o.Detail != "" {
			parts[i] += ": " + o.Detail
		}
	}
	return strings.Join(parts, "; ")
}

// retryable reports whether a failed request may succeed if sent again.
func retryable(err error) bool {
	var ce *client.Error
	if !errors.As(err, &ce) {
		return true // the network, a timeout, a response cut off
	}
	switch ce.StatusCode {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	case http.StatusConflict: // the same batch is still running (an earlier attempt)
		return ce.Code() == licensor.CodeIdempotencyKeyInFlight
	}
	return false
}

// explain adds advice to the errors an operator can fix.
func explain(err error) error {
	switch licensor.ErrorCode(err) {
	case licensor.CodeBatchTooLarge, licensor.CodeBodyTooLarge:
		return fmt.Errorf("%w (lower --chunk)", err)
	case licensor.CodeAPIKeyMissing, licensor.CodeAPIKeyInvalid, licensor.CodeAPIKeyRevoked, licensor.CodeAPIKeyExpired:
		return fmt.Errorf("%w (check --key)", err)
	case licensor.CodeInsufficientScope:
		return fmt.Errorf("%w (the key needs the write scope)", err)
	case licensor.CodeIdempotencyKeyReused:
		return fmt.Errorf("%w (another request used this batch's key; try --idempotency-salt)", err)
	}
	return err
}

// idempotencyKey is derived from the content of a batch (and the salt)
// only, so that sending the same batch again (a retry, or a second run of
// the same import) uses the same key.
func idempotencyKey(salt string, drafts []licensor.LicenseDraft) string {
	b, err := json.Marshal(drafts)
	if err != nil {
		panic(err) // drafts are plain data
	}
	h := sha256.New()
	h.Write([]byte(salt))
	h.Write([]byte{0})
	h.Write(b)
	return "legacy-import-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// replayKey marks a request context with a flag set when the server
// answers with a replay of an earlier response (Idempotent-Replayed: true).
type replayKey struct{}

type replayTransport struct{ next http.RoundTripper }

func (t replayTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if err == nil && strings.EqualFold(resp.Header.Get("Idempotent-Replayed"), "true") {
		if flag, ok := r.Context().Value(replayKey{}).(*atomic.Bool); ok {
			flag.Store(true)
		}
	}
	return resp, err
}

// summary prints the counts of the run on stdout, and the check that
// every record read is accounted for: read = imported + already present +
// rejected (a dry run: valid + rejected), each rejected record listed. It
// reports whether the counts add up for the records read; a run that
// stopped early leaves records "not processed", which the check names.
func (im *importer) summary(stdout io.Writer, took time.Duration, stopped bool) (balanced bool) {
	s := &im.stats
	read, rejected, conflicts, listed := s.read.Load(), s.rejected.Load(), s.conflicts.Load(), s.listed.Load()
	if im.cfg.dryRun {
		fmt.Fprintf(stdout, "read:            %d\nvalid:           %d\nrejected:        %d\n", read, s.valid.Load(), rejected)
	} else {
		fmt.Fprintf(stdout, "read:            %d\nimported:        %d\nalready present: %d\nrejected:        %d\n",
			read, s.imported.Load(), s.present.Load(), rejected)
	}
	if conflicts > 0 {
		fmt.Fprintf(stdout, "  of which conflicts: %d (order id on the server with other values)\n", conflicts)
	}
	left := read - s.done()
	if left > 0 {
		fmt.Fprintf(stdout, "not processed:   %d\n", left)
	}
	var sum string
	if im.cfg.dryRun {
		sum = fmt.Sprintf("valid %d + rejected %d", s.valid.Load(), rejected)
	} else {
		sum = fmt.Sprintf("imported %d + already present %d + rejected %d", s.imported.Load(), s.present.Load(), rejected)
	}
	switch {
	case left < 0 || listed != rejected:
		fmt.Fprintf(stdout, "check:           FAILED: read %d, %s, %d rejects listed\n", read, sum, listed)
		return false
	case left > 0 || stopped:
		fmt.Fprintf(stdout, "check:           incomplete: the import stopped before the end of its input; read %d = %s + not processed %d\n", read, sum, left)
	default:
		fmt.Fprintf(stdout, "check:           ok: read %d = %s\n", read, sum)
	}
	var notes []string
	if im.cfg.dryRun {
		notes = append(notes, "dry run: nothing was written")
		if im.client == nil {
			notes = append(notes, "products were not checked on the server (no --key)")
		}
	}
	if im.cfg.rejectFile != "" && rejected > 0 {
		notes = append(notes, "rejected records are in "+im.cfg.rejectFile)
	}
	if conflicts > 0 {
		notes = append(notes, fmt.Sprintf("%d records conflict with licenses on the server under the same order id (see their reasons): if the earlier import used another --timezone, rerun it with that one", conflicts))
	}
	im.encMu.Lock()
	var encs []string
	for det, n := range im.encodings {
		encs = append(encs, fmt.Sprintf("%s %d", det, n))
	}
	im.encMu.Unlock()
	if len(encs) > 0 {
		slices.Sort(encs)
		notes = append(notes, "inputs by encoding: "+strings.Join(encs, ", "))
	}
	notes = append(notes, fmt.Sprintf("took %s (%s records/s)", took.Round(time.Millisecond), rate(s.done(), took)))
	for _, n := range notes {
		fmt.Fprintln(im.stderr, n)
	}
	return true
}

// compareExisting looks at the license holding the order id of an item
// that the server refused with ORDER_ID_CONFLICT. It returns "" when that
// license is what the item would have created (an earlier run imported
// it), or else a reject reason naming each difference. Status, recurring
// and expiry_date are not compared: they change in a license's life.
func (im *importer) compareExisting(ctx context.Context, it item, errs []client.ErrorObject) (string, error) {
	order := ""
	if it.draft.OrderID != nil {
		order = *it.draft.OrderID
	}
	ce := &client.Error{Errors: errs}
	id, ok := ce.ExistingID()
	var l *licensor.License
	if ok {
		got, err := im.client.License(context.WithoutCancel(ctx), id)
		switch {
		case err == nil:
			l = got
		case licensor.ErrorCode(err) != licensor.CodeLicenseNotFound:
			return "", fmt.Errorf("import legacy: reading license %d, which holds order_id %s: %w", id, order, err)
		}
	}
	if l == nil { // deleted meanwhile, or an older server: look it up by order id
		page, err := im.client.Licenses(context.WithoutCancel(ctx), client.LicenseQuery{OrderID: order, PageSize: 1})
		if err != nil {
			return "", fmt.Errorf("import legacy: looking up order_id %s: %w", order, err)
		}
		if len(page.Licenses) == 0 {
			return "conflict: the server refused order_id " + order + " as taken, but no license holds it now; run the import again", nil
		}
		l = &page.Licenses[0]
	}
	d := &it.draft
	var diffs []string
	differ := func(name string, there, here any) {
		diffs = append(diffs, fmt.Sprintf("%s %v there, %v here", name, there, here))
	}
	if l.UserID != d.UserID {
		differ("user", l.UserID, d.UserID)
	}
	if l.ProductID != d.ProductID {
		differ("product", l.ProductID, d.ProductID)
	}
	date := func(name string, there int64, here *int64) {
		if here != nil && there != *here {
			diffs = append(diffs, fmt.Sprintf("%s %d (%s) there, %d (%s) here", name, there, time.Unix(there, 0).UTC().Format(time.DateTime+"Z"),
				*here, time.Unix(*here, 0).UTC().Format(time.DateTime+"Z")))
		}
	}
	date("start_date", l.StartDate, d.StartDate)
	if d.StopDate != nil {
		if l.StopDate == nil {
			differ("stop_date", "none", *d.StopDate)
		} else {
			date("stop_date", *l.StopDate, d.StopDate)
		}
	}
	date("purchase_timestamp", l.PurchaseTimestamp, d.PurchaseTimestamp)
	if d.PriceAmount != nil && (l.PriceAmount == nil || *l.PriceAmount != *d.PriceAmount) {
		differ("price_currency_amount", deref(l.PriceAmount), *d.PriceAmount)
	}
	if d.PriceCurrency != nil && (l.PriceCurrency == nil || *l.PriceCurrency != *d.PriceCurrency) {
		differ("price_currency_iso4217", deref(l.PriceCurrency), *d.PriceCurrency)
	}
	if (d.PaymentMethod == nil) != (l.PaymentMethod == nil) || (d.PaymentMethod != nil && *d.PaymentMethod != *l.PaymentMethod) {
		differ("payment_method", quoted(l.PaymentMethod), quoted(d.PaymentMethod))
	}
	if len(diffs) == 0 {
		return "", nil
	}
	return fmt.Sprintf("conflict: order_id %s is already held by license %d, which differs from this record: %s", order, l.ID, strings.Join(diffs, "; ")), nil
}

func deref[T any](p *T) any {
	if p == nil {
		return "none"
	}
	return *p
}

func quoted(p *string) string {
	if p == nil {
		return "none"
	}
	return strconv.Quote(*p)
}

func rate(n int64, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return groupDigits(int64(float64(n) / d.Seconds()))
}

// groupDigits writes n with thousands separators: 12,345.
func groupDigits(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return s
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// progress shows how an import advances on standard error: an updating
// line on a terminal, a plain line every interval otherwise.
type progress struct {
	w        io.Writer
	mode     string // "bar", "plain" or "none"
	interval time.Duration
	total    int64 // input bytes; -1 when unknown
	stats    *importStats
	dryRun   bool

	mu      sync.Mutex
	began   time.Time
	drawn   bool // a bar line is on the screen
	quit    chan struct{}
	stopped chan struct{}
}

func newProgress(w io.Writer, mode string, interval time.Duration, total int64, stats *importStats, dryRun bool) *progress {
	if mode == "auto" {
		mode = "plain"
		if isTerminal(w) {
			mode = "bar"
		}
	}
	return &progress{w: w, mode: mode, interval: interval, total: total, stats: stats, dryRun: dryRun}
}

// isTerminal reports whether w is a character device, such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

func (p *progress) start() {
	p.began = time.Now()
	if p.mode == "none" {
		return
	}
	every := p.interval
	if p.mode == "bar" {
		every = 200 * time.Millisecond
	}
	p.quit, p.stopped = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(p.stopped)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.quit:
				return
			case <-t.C:
				p.draw()
			}
		}
	}()
}

// stop ends the display, leaving a final bar on the screen.
func (p *progress) stop() {
	if p.quit == nil {
		return
	}
	close(p.quit)
	<-p.stopped
	if p.mode == "bar" {
		p.draw()
		p.mu.Lock()
		fmt.Fprintln(p.w)
		p.drawn = false
		p.mu.Unlock()
	}
}

// println prints a message line without garbling the bar.
func (p *progress) println(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
	fmt.Fprintln(p.w, s)
	if p.drawn {
		fmt.Fprint(p.w, p.line())
	}
}

func (p *progress) draw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mode == "bar" {
		fmt.Fprint(p.w, "\r\x1b[K"+p.line())
		p.drawn = true
		return
	}
	fmt.Fprintln(p.w, "import: "+p.line())
}

// line is the progress text: counts, rate, and with known input sizes a
// percentage and an ETA.
func (p *progress) line() string {
	s := p.stats
	elapsed := time.Since(p.began)
	var b strings.Builder
	frac := -1.0
	if p.total > 0 {
		frac = min(float64(s.bytes.Load())/float64(p.total), 1)
	}
	if p.mode == "bar" && frac >= 0 {
		const width = 24
		n := int(frac * width)
		b.WriteString("[" + strings.Repeat("=", n) + strings.Repeat(" ", width-n) + "] ")
	}
	if frac >= 0 {
		fmt.Fprintf(&b, "%3.0f%% ", frac*100)
	}
	fmt.Fprintf(&b, "read %s", groupDigits(s.read.Load()))
	if p.dryRun {
		fmt.Fprintf(&b, ", valid %s", groupDigits(s.valid.Load()))
	} else {
		fmt.Fprintf(&b, ", imported %s, already present %s", groupDigits(s.imported.Load()), groupDigits(s.present.Load()))
	}
	fmt.Fprintf(&b, ", rejected %s, %s/s", groupDigits(s.rejected.Load()), rate(s.done(), elapsed))
	if frac > 0 && frac < 1 {
		eta := time.Duration(float64(elapsed) * (1 - frac) / frac)
		fmt.Fprintf(&b, ", ETA %s", eta.Round(time.Second))
	}
	return b.String()
}
