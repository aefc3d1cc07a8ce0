package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// sameWork is the same-work references of issue 17, in the reference
// server's process: the work licensor must do for a request, done with the
// raw driver and encoding/json and nothing else (no authentication, no
// middleware, no access log, no metrics, no cache):
//
//   - GET /ref/license/{id}: GetLicenseById's point read (the same SELECT
//     of the same columns by primary key) and its document, marshalled with
//     encoding/json: the limit of GetLicenseById;
//   - GET /ref/licenses?product=P: the first page of a product's licenses
//     (the same SELECT ... ORDER BY id LIMIT 101 the list runs) and its
//     document of 100 licenses: the limit of a list page.
//
// On SQLite it reads through database/sql + modernc.org/sqlite with the
// pragmas and pool size of licensor's readers; on PostgreSQL through a
// pgxpool of licensor's default size.
type sameWork struct {
	sqlite *sql.DB
	one    *sql.Stmt
	page   *sql.Stmt
	pg     *pgxpool.Pool
}

const refLicenseColumns = `id, user_id, product_id, status, start_date, stop_date, order_id, recurring,
	expiry_date, price_amount, price_currency, purchase_timestamp, payment_method, created_at`

func openSameWork(ctx context.Context, kind, dsn string) (*sameWork, error) {
	switch kind {
	case "sqlite":
		r := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")
		db, err := sql.Open("sqlite", "file:"+r.Replace(dsn)+"?_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_pragma=query_only(1)")
		if err != nil {
			return nil, err
		}
		n := max(4, runtime.GOMAXPROCS(0)) // licensor's reader pool
		db.SetMaxOpenConns(n)
		db.SetMaxIdleConns(n)
		sw := &sameWork{sqlite: db}
		if sw.one, err = db.PrepareContext(ctx, `SELECT `+refLicenseColumns+` FROM licenses WHERE id = ? AND deleted_at IS NULL`); err == nil {
			sw.page, err = db.PrepareContext(ctx, `SELECT `+refLicenseColumns+` FROM licenses WHERE product_id = ? AND deleted_at IS NULL ORDER BY id ASC LIMIT ?`)
		}
		if err != nil {
			db.Close()
			return nil, err
		}
		return sw, nil
	case "postgres":
		cfg, err := pgxpool.ParseConfig(dsn)
		if err != nil {
			return nil, err
		}
		cfg.MaxConns = int32(min(max(4*runtime.NumCPU(), 8), 32)) // postgres.DefaultMaxConns
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			return nil, err
		}
		if err := pool.Ping(ctx); err != nil {
			pool.Close()
			return nil, err
		}
		return &sameWork{pg: pool}, nil
	}
	return nil, fmt.Errorf("--engine %q: want sqlite or postgres", kind)
}

func (sw *sameWork) close() {
	if sw.sqlite != nil {
		sw.sqlite.Close()
	}
	if sw.pg != nil {
		sw.pg.Close()
	}
}

// refRow is one licenses row as the driver returns it.
type refRow struct {
	id, productID, start, purchase, created int64
	user, status                            string
	recurring                               bool
	stop, expiry, price                     *int64
	order, currency, method                 *string
}

func (r *refRow) dest() []any {
	return []any{&r.id, &r.user, &r.productID, &r.status, &r.start, &r.stop, &r.order, &r.recurring,
		&r.expiry, &r.price, &r.currency, &r.purchase, &r.method, &r.created}
}

func (r *refRow) document() refLicense {
	var l refLicense
	id := strconv.FormatInt(r.id, 10)
	l.ID, l.Type = id, "License"
	a := &l.Attributes
	a.Status, a.StartDate, a.StopDate, a.OrderID = r.status, r.start, r.stop, r.order
	a.RenewRecord.Recurring, a.RenewRecord.ExpiryDate = r.recurring, r.expiry
	a.PurchaseRecord.PriceAmount, a.PurchaseRecord.PriceCurrency = r.price, r.currency
	a.PurchaseRecord.PurchaseTimestamp, a.PurchaseRecord.PaymentMethod = r.purchase, r.method
	a.CreatedAt = r.created
	l.Relationships.User.Data = refIdentifier{"User", r.user}
	l.Relationships.Product.Data = refIdentifier{"Product", strconv.FormatInt(r.productID, 10)}
	l.Links.Self = apiPath + "/licenses/" + id
	return l
}

func writeRefJSON(w http.ResponseWriter, doc any) {
	b, err := json.Marshal(doc)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/vnd.api+json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

func (sw *sameWork) license(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		http.Error(w, "bad id", http.StatusBadRequest)
		return
	}
	var row refRow
	if sw.pg != nil {
		err = sw.pg.QueryRow(r.Context(), `SELECT `+refLicenseColumns+` FROM licenses WHERE id = $1 AND deleted_at IS NULL`, id).Scan(row.dest()...)
	} else {
		err = sw.one.QueryRowContext(r.Context(), id).Scan(row.dest()...)
	}
	if errors.Is(err, sql.ErrNoRows) || errors.Is(err, pgx.ErrNoRows) {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeRefJSON(w, struct {
		Data refLicense `json:"data"`
	}{row.document()})
}

// refPage is the size of a list page (licensor's default).
const refPage = 100

func (sw *sameWork) list(w http.ResponseWriter, r *http.Request) {
	product, err := strconv.ParseInt(r.URL.Query().Get("product"), 10, 64)
	if err != nil {
		http.Error(w, "bad product", http.StatusBadRequest)
		return
	}
	items := make([]refLicense, 0, refPage+1)
	scan := func(scan func(...any) error) error {
		var row refRow
		if err := scan(row.dest()...); err != nil {
			return err
		}
		items = append(items, row.document())
		return nil
	}
	if sw.pg != nil {
		var rows pgx.Rows
		rows, err = sw.pg.Query(r.Context(), `SELECT `+refLicenseColumns+` FROM licenses WHERE product_id = $1 AND deleted_at IS NULL ORDER BY id ASC LIMIT $2`, product, refPage+1)
		if err == nil {
			for rows.Next() && err == nil {
				err = scan(rows.Scan)
			}
			rows.Close()
			if err == nil {
				err = rows.Err()
			}
		}
	} else {
		var rows *sql.Rows
		rows, err = sw.page.QueryContext(r.Context(), product, refPage+1)
		if err == nil {
			for rows.Next() && err == nil {
				err = scan(rows.Scan)
			}
			if cerr := rows.Close(); err == nil {
				err = cerr
			}
			if err == nil {
				err = rows.Err()
			}
		}
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	var doc struct {
		Data  []refLicense `json:"data"`
		Links struct {
			Self string `json:"self"`
			Next string `json:"next,omitempty"`
		} `json:"links"`
	}
	self := apiPath + "/licenses?filter[product_id]=" + strconv.FormatInt(product, 10)
	doc.Links.Self = self
	if len(items) > refPage {
		items = items[:refPage]
		doc.Links.Next = self + "&page[after]=" + items[refPage-1].ID
	}
	doc.Data = items
	writeRefJSON(w, &doc)
}
