package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
)

// runScenarios measures the references and the scenarios, in an order that
// keeps the read scenarios on the data exactly as seeded: the HTTP
// reference, the reads, the entitlement check, the storage references,
// then the writes and the mixed workload.
func (r *runner) runScenarios(ctx context.Context) {
	cfg, wl := r.cfg, r.wl
	c := cfg.concurrency
	reads := func(next func(*worker) call) func(*worker) (call, bool) {
		return func(w *worker) (call, bool) { return next(w), true }
	}

	// The list scenarios run at two concurrencies: --list-concurrency, light
	// load, where latency is the cost of the query (their latency targets
	// are read there), and --concurrency, where the machine is saturated.
	levels := []int{cfg.listConcurrency}
	if cfg.concurrency != cfg.listConcurrency {
		levels = append(levels, cfg.concurrency)
	}
	httpRefs := map[int]*Result{}
	if r.wantAny(scGetByID, scByUser, scListUser, scListProduct, scListRange, scDeepProduct, scDeepRange, scMixed, scEntitlements, scEntHot, scCheckBatch, refHTTP) {
		for _, conc := range levels {
			httpRefs[conc] = r.measureHTTP(ctx, httpRun{name: refHTTP, kind: "reference", concurrency: conc, unit: "req/s", proc: r.ref,
				next: func(w *worker) (call, bool) {
					return call{method: "GET", url: r.refURL + strconv.FormatInt(1+w.rng.Int64N(wl.licenses), 10), want: 200}, true
				}})
		}
	}
	httpRef := httpRefs[c]
	api := func(name string, conc int, unit string, next func(*worker) (call, bool), ref *Result) *Result {
		if ctx.Err() != nil || !r.want(name) {
			return nil
		}
		return r.measureHTTP(ctx, httpRun{name: name, kind: "api", concurrency: conc, unit: unit, proc: r.server, next: next, reference: ref})
	}

	api(scGetByID, c, "req/s", reads(wl.getByID), httpRef)
	for _, conc := range levels {
		api(scByUser, conc, "req/s", reads(wl.getByUser), httpRefs[conc])
		api(scListUser, conc, "req/s", reads(wl.listUserStatus), httpRefs[conc])
		api(scListProduct, conc, "req/s", reads(wl.listProduct), httpRefs[conc])
		api(scListRange, conc, "req/s", reads(wl.listRange), httpRefs[conc])
	}
	// Product 1 is the most popular (about 6 % of the licenses): four
	// walks through it in four orders.
	r.deep(ctx, scDeepProduct, levels, func(i int) string {
		return fmt.Sprintf("%s/licenses?filter[product_id]=1&sort=%s", wl.api, []string{"id", "-id", "created_at", "-stop_date"}[i%4])
	}, httpRefs)
	r.deep(ctx, scDeepRange, levels, func(i int) string {
		return fmt.Sprintf("%s/licenses?filter[status]=ACTIVE&filter[stop_date][gte]=%d&sort=stop_date", wl.api, wl.now+int64(i)*30*86400)
	}, httpRefs)
	r.entitlements(ctx, httpRef)

	var insertOne, insertBatch, deleteBatch *Result
	if ctx.Err() == nil && r.wantAny(scCreate, scBatchCreate, scBatchDelete, refInsertOne, refInsertBatch, refDeleteBatch) {
		var err error
		insertOne, insertBatch, deleteBatch, err = r.storageRefs(ctx)
		if err != nil {
			r.rep.Notes = append(r.rep.Notes, "storage references failed: "+err.Error())
			r.logf("storage references failed: %v", err)
		}
	}

	for _, conc := range []int{1, 16, 64} {
		api(scCreate, conc, "req/s", func(w *worker) (call, bool) { return wl.create(w, nil), true }, insertOne)
	}
	var batchCreate *Result
	if res := api(scBatchCreate, cfg.batchConcurrency, "rows/s", func(w *worker) (call, bool) {
		return wl.batchCreate(w, 1000), true
	}, insertBatch); res != nil {
		batchCreate = res
	}
	if ctx.Err() == nil && r.want(scBatchDelete) {
		r.batchDelete(ctx, batchCreate, deleteBatch)
	}
	if ctx.Err() == nil && r.want(scMixed) {
		api(scMixed, c, "req/s", wl.mixed(&idStack{}), httpRef)
	}

	// The HTTP reference again, at the end: how much the machine's
	// capacity drifted during the run (other tenants, thermal limits).
	if httpRef != nil && ctx.Err() == nil {
		again := r.measureHTTP(ctx, httpRun{name: refHTTP + " (again)", kind: "reference", concurrency: c, unit: "req/s", proc: r.ref,
			next: func(w *worker) (call, bool) {
				return call{method: "GET", url: r.refURL + strconv.FormatInt(1+w.rng.Int64N(wl.licenses), 10), want: 200}, true
			}})
		r.rep.Notes = append(r.rep.Notes, fmt.Sprintf("the HTTP reference at c=%d drifted from %s to %s req/s during the run (%.2f x); ratios use the first",
			c, fmtRate(httpRef.Rate), fmtRate(again.Rate), again.Rate/httpRef.Rate))
	}
	if r.cfg.profileDir != "" && ctx.Err() == nil {
		path := filepath.Join(r.cfg.profileDir, fmt.Sprintf("%s-%s-heap.pprof", r.eng.kind, humanCount(cfg.scale)))
		if err := download(ctx, "http://"+r.pprof+"/debug/pprof/heap", path); err != nil {
			r.logf("heap profile: %v", err)
		}
	}
}

// deep measures pages deep in keyset walks: it first follows links.next
// --deep-pages times from four start URLs, then requests the next ten
// pages of each at random.
func (r *runner) deep(ctx context.Context, name string, levels []int, start func(i int) string, refs map[int]*Result) {
	if ctx.Err() != nil || !r.want(name) {
		return
	}
	client := newHTTPClient(1)
	defer client.CloseIdleConnections()
	starts := make([]string, 4)
	for i := range starts {
		starts[i] = start(i)
	}
	urls, reached, err := deepPages(ctx, client, r.header, r.wl.base, starts, r.cfg.deepPages, 10)
	if err != nil || len(urls) == 0 {
		r.skip(name, r.cfg.concurrency, fmt.Sprintf("could not walk the pages: %v", err))
		return
	}
	note := fmt.Sprintf("pages %d-%d of 100 licenses, 4 walks", r.cfg.deepPages+1, r.cfg.deepPages+10)
	if reached < r.cfg.deepPages {
		note = fmt.Sprintf("a walk ended after %d pages (fewer than --deep-pages %d): its last page is used; %d deep URLs", reached+1, r.cfg.deepPages, len(urls))
	}
	for _, conc := range levels {
		if ctx.Err() != nil {
			return
		}
		res := r.measureHTTP(ctx, httpRun{name: name, kind: "api", concurrency: conc, unit: "req/s", proc: r.server,
			next: func(w *worker) (call, bool) {
				return call{method: "GET", url: urls[w.rng.IntN(len(urls))], want: 200}, true
			}, reference: refs[conc]})
		r.annotate(res, note)
	}
}

// annotate adds a note to a result already in the report.
func (r *runner) annotate(res *Result, note string) {
	for i := range r.rep.Results {
		x := &r.rep.Results[i]
		if x.Scenario == res.Scenario && x.Concurrency == res.Concurrency {
			x.addNote(note)
		}
	}
}

// entitlements measures the entitlement check, single and batch, if the
// server has the routes (another change adds them): a probe request tells.
func (r *runner) entitlements(ctx context.Context, ref *Result) {
	if ctx.Err() != nil {
		return
	}
	wl, c := r.wl, r.cfg.concurrency
	client := newHTTPClient(1)
	defer client.CloseIdleConnections()
	w := &worker{rng: newRand(1)}
	if r.wantAny(scEntitlements, scEntHot) {
		status, body, err := probe(ctx, client, r.header, call{method: "GET", url: wl.api + "/users/1/entitlements"})
		switch {
		case err != nil:
			r.skip(scEntitlements, c, "probe failed: "+err.Error())
		case routeMissing(status, body):
			r.skip(scEntitlements, c, "GET .../users/{user_id}/entitlements does not exist on this server yet")
		case status != 200:
			r.skip(scEntitlements, c, fmt.Sprintf("probe GET .../users/1/entitlements answered %d: %s", status, truncate(body, 200)))
		default:
			res := r.measureHTTP(ctx, httpRun{name: scEntitlements, kind: "api", concurrency: c, unit: "req/s", proc: r.server,
				next: func(w *worker) (call, bool) { return wl.entitlements(w), true }, reference: ref})
			r.annotate(res, "users drawn uniformly from all users: mostly cold")
			if r.want(scEntHot) && ctx.Err() == nil {
				res := r.measureHTTP(ctx, httpRun{name: scEntHot, kind: "api", concurrency: c, unit: "req/s", proc: r.server,
					next: func(w *worker) (call, bool) { return wl.entitlementsHot(w), true }, reference: ref})
				r.annotate(res, fmt.Sprintf("users drawn from %d users, as repeated playback checks", min(wl.users, hotUsers)))
			}
		}
	}
	if r.want(scCheckBatch) && ctx.Err() == nil {
		name := fmt.Sprintf("%s x%d", scCheckBatch, r.cfg.checkBatch)
		c := r.cfg.batchConcurrency
		status, body, err := probe(ctx, client, r.header, wl.checkBatch(w, 2))
		switch {
		case err != nil:
			r.skip(name, c, "probe failed: "+err.Error())
		case routeMissing(status, body):
			r.skip(name, c, "POST .../entitlements/check does not exist on this server yet")
		case status != 200:
			r.skip(name, c, fmt.Sprintf("probe POST .../entitlements/check answered %d (request format?): %s", status, truncate(body, 200)))
		default:
			res := r.measureHTTP(ctx, httpRun{name: name, kind: "api", concurrency: c, unit: "rows/s", proc: r.server,
				next: func(w *worker) (call, bool) { return wl.checkBatch(w, r.cfg.checkBatch), true }})
			r.annotate(res, "rows/s are questions answered per second")
		}
	}
}

// storageRefs measures the raw driver on a fresh, migrated database with
// the same schema and indexes and, on SQLite, the pragmas of licensor's
// writer: single-row insert transactions, batched inserts of 1000 rows per
// transaction, and batched deletes (tombstones) of 1000 rows per
// transaction of the rows the batched inserts wrote.
func (r *runner) storageRefs(ctx context.Context) (one, batch, del *Result, err error) {
	dsn, err := r.eng.create(ctx, "ref")
	if err != nil {
		return nil, nil, nil, err
	}
	if _, err := r.licensor(ctx, "migrate", "--db", dsn); err != nil {
		return nil, nil, nil, err
	}
	seedDB, err := openBenchDB(ctx, r.eng.kind, dsn, true)
	if err != nil {
		return nil, nil, nil, err
	}
	err = seedDB.seedProducts(ctx, seedCatalogue(int(r.cfg.products)))
	seedDB.close()
	if err != nil {
		return nil, nil, nil, err
	}
	db, err := openBenchDB(ctx, r.eng.kind, dsn, false)
	if err != nil {
		return nil, nil, nil, err
	}
	defer db.close()
	rng := newRand(2)
	seq := int64(0)
	row := func() licenseRow {
		seq++
		p := 1 + rng.Int64N(r.cfg.products)
		now := nowUnix()
		return licenseRow{userID: strconv.FormatInt(1+rng.Int64N(r.cfg.users), 10), productID: p, start: now, stop: now + 2592000,
			orderID: "ref-" + strconv.FormatInt(seq, 10), recurring: productRecurring(p), price: productPrice(p),
			createdAt: now, purchaseTimeNow: now}
	}
	measure := func(name, unit string, op func() (int, bool, error)) *Result {
		res := &Result{Scenario: name, Kind: "reference", Concurrency: 1, Unit: unit}
		meter := &cpuMeter{}
		s := opLoop(ctx, r.cfg.warmup, r.cfg.duration, window{start: meter.start, stop: func(bool) { meter.stop() }}, op)
		res.fill(s, unit == "rows/s")
		res.ServerCPU, res.ClientCPU, res.HostCPU = meter.self, meter.self, meter.host
		res.setCPUPerOp()
		res.Note = "in the harness process (server cpu is the harness's)"
		r.report(res)
		return res
	}
	if r.wantAny(scCreate, refInsertOne) {
		one = measure(refInsertOne, "tx/s", func() (int, bool, error) {
			l := row()
			return 1, true, db.insertOne(ctx, &l)
		})
	}
	var first int64
	if r.wantAny(scBatchCreate, scBatchDelete, refInsertBatch, refDeleteBatch) {
		rows := make([]licenseRow, 1000)
		firstID, err := db.maxLicenseID(ctx)
		if err != nil {
			return one, nil, nil, err
		}
		first = firstID + 1
		batch = measure(refInsertBatch, "rows/s", func() (int, bool, error) {
			for i := range rows {
				rows[i] = row()
			}
			return len(rows), true, db.insertBatch(ctx, rows)
		})
	}
	if r.wantAny(scBatchDelete, refDeleteBatch) && batch != nil {
		last, err := db.maxLicenseID(ctx)
		if err != nil {
			return one, batch, nil, err
		}
		pool := &idPool{next: first, last: last}
		del = measure(refDeleteBatch, "rows/s", func() (int, bool, error) {
			ids := pool.take(1000)
			if len(ids) == 0 {
				return 0, false, nil
			}
			return len(ids), true, db.deleteBatch(ctx, ids, nowUnix())
		})
	}
	return one, batch, del, nil
}

// batchDelete seeds licenses for BatchDeleteLicenses to delete (directly
// in the database, outside the measurement: as many as the measured
// BatchCreateLicenses rate would delete in the run, with margin), then
// deletes them through the API 1000 at a time.
func (r *runner) batchDelete(ctx context.Context, batchCreate, ref *Result) {
	need := int64(200_000)
	if batchCreate != nil && batchCreate.Rate > 0 {
		need = int64(batchCreate.Rate * (r.cfg.warmup + r.cfg.duration).Seconds() * 2)
	}
	need = min(max(need, 20_000), 3_000_000)
	need = (need + 999) / 1000 * 1000
	r.logf("seeding %s licenses for %s", humanCount(need), scBatchDelete)
	db, err := openBenchDB(ctx, r.eng.kind, r.dsn, true)
	if err != nil {
		r.skip(scBatchDelete, r.cfg.batchConcurrency, "open the database: "+err.Error())
		return
	}
	before, err := db.maxLicenseID(ctx)
	if err == nil {
		now := nowUnix()
		err = db.seedLicenses(ctx, licenseSeed{from: r.seq, count: need, users: r.cfg.users, products: r.cfg.products,
			createdBase: now - 3600, createdSpan: 3600, now: now})
	}
	var after int64
	if err == nil {
		after, err = db.maxLicenseID(ctx)
	}
	db.close()
	if err != nil {
		r.skip(scBatchDelete, r.cfg.batchConcurrency, "seed: "+err.Error())
		return
	}
	r.seq += need
	if after-before != need {
		r.skip(scBatchDelete, r.cfg.batchConcurrency, fmt.Sprintf("seed: expected %d new ids after %d, got up to %d (another writer?)", need, before, after))
		return
	}
	pool := &idPool{next: before + 1, last: after}
	res := r.measureHTTP(ctx, httpRun{name: scBatchDelete, kind: "api", concurrency: r.cfg.batchConcurrency, unit: "rows/s", proc: r.server,
		next: func(w *worker) (call, bool) {
			ids := pool.take(1000)
			if len(ids) == 0 {
				return call{}, false
			}
			return r.wl.batchDelete(ids), true
		}, reference: ref})
	r.annotate(res, fmt.Sprintf("%s licenses seeded for it", humanCount(need)))
}
