package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"

	"github.com/licensor/licensor"
)

// engine makes fresh databases of one kind: SQLite files in a directory,
// or PostgreSQL databases on the server of an admin URL.
type engine struct {
	kind     string // "sqlite" or "postgres"
	dir      string // SQLite: where the files go
	adminURL string // PostgreSQL: a database to connect to for CREATE/DROP DATABASE
	tag      string // random, makes this run's database names unique
	created  []string
}

func newEngine(dir, postgresURL string) (*engine, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	e := &engine{kind: "sqlite", dir: dir, tag: hex.EncodeToString(b[:])}
	if postgresURL != "" {
		e.kind, e.adminURL = "postgres", postgresURL
	}
	return e, nil
}

// create makes an empty database and returns the DSN licensor's --db takes.
func (e *engine) create(ctx context.Context, name string) (string, error) {
	if e.kind == "sqlite" {
		return filepath.Join(e.dir, name+".db"), nil
	}
	db := "licensor_bench_" + e.tag + "_" + name
	conn, err := pgx.Connect(ctx, e.adminURL)
	if err != nil {
		return "", fmt.Errorf("create database: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize()); err != nil {
		return "", fmt.Errorf("create database %s: %w", db, err)
	}
	e.created = append(e.created, db)
	u, err := url.Parse(e.adminURL)
	if err != nil {
		return "", fmt.Errorf("create database: the PostgreSQL URL is malformed")
	}
	u.Path = "/" + db
	return u.String(), nil
}

// dropAll drops the PostgreSQL databases this run created (SQLite files go
// with the temporary directory).
func (e *engine) dropAll(ctx context.Context) error {
	if len(e.created) == 0 {
		return nil
	}
	conn, err := pgx.Connect(ctx, e.adminURL)
	if err != nil {
		return fmt.Errorf("drop databases: %w", err)
	}
	defer conn.Close(ctx)
	var errs []error
	for _, db := range e.created {
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)"); err != nil {
			errs = append(errs, fmt.Errorf("drop database %s: %w", db, err))
		}
	}
	e.created = nil
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// benchDB is a direct connection to a licensor database, for seeding and
// for the storage references; it knows the schema but none of licensor's
// code.
type benchDB interface {
	seedProducts(ctx context.Context, products []seedProduct) error
	// seedLicenses inserts licenses with sequence numbers s.from+1 ..
	// s.from+s.count in one statement; with s.bulk it drops the licenses
	// indexes first and builds them again after.
	seedLicenses(ctx context.Context, s licenseSeed) error
	maxLicenseID(ctx context.Context) (int64, error)
	insertOne(ctx context.Context, r *licenseRow) error
	insertBatch(ctx context.Context, rows []licenseRow) error
	deleteBatch(ctx context.Context, ids []int64, at int64) error
	// settle makes the database as a long-running one would be after a
	// bulk load (checkpointed WAL; vacuumed and analyzed on PostgreSQL).
	settle(ctx context.Context) error
	size(ctx context.Context) (int64, error)
	close() error
}

// openBenchDB connects to dsn. With forSeeding the SQLite connection trades
// durability for speed (the seed is not measured); otherwise it has the
// pragmas of licensor's own writer connection.
func openBenchDB(ctx context.Context, kind, dsn string, forSeeding bool) (benchDB, error) {
	if kind == "postgres" {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return nil, fmt.Errorf("connect: %w", err)
		}
		if forSeeding {
			if _, err := conn.Exec(ctx, "SET synchronous_commit = off; SET maintenance_work_mem = '256MB'"); err != nil {
				conn.Close(ctx)
				return nil, fmt.Errorf("connect: %w", err)
			}
		}
		return &pgDB{conn: conn}, nil
	}
	db, err := sql.Open("sqlite", sqliteWriterDSN(dsn, forSeeding))
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open: %w", err)
	}
	return &sqliteDB{db: db, path: dsn}, nil
}

// sqliteWriterDSN is the DSN of licensor's writer connection
// (internal/sqlite/sqlite.go: busy_timeout 5 s, foreign keys, WAL,
// synchronous=FULL, BEGIN IMMEDIATE), or for seeding the same with
// synchronous=OFF and a large page cache.
func sqliteWriterDSN(path string, forSeeding bool) string {
	r := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")
	dsn := "file:" + r.Replace(path) + "?_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)"
	if forSeeding {
		return dsn + "&_pragma=synchronous(OFF)&_pragma=cache_size(-262144)&_txlock=immediate"
	}
	return dsn + "&_pragma=synchronous(FULL)&_txlock=immediate"
}

// seedProduct is one product of the catalogue the harness seeds.
type seedProduct struct {
	title, typ                       string
	premium, buyable, visible, recur bool
	price                            int64
	period                           string // "" never ends
	channels                         string // JSON, as licensor stores it
}

// Product attributes are functions of the product id so that the SQL that
// seeds licenses can derive each license's stop date, price and recurring
// flag from its product id alone. They must agree with the CASE
// expressions of licenseSelect.
func productPeriod(id int64) string {
	switch m := id % 10; {
	case m == 0:
		return "" // never ends (a lifetime purchase)
	case m < 5:
		return "P30D"
	case m < 9:
		return "P365D"
	default:
		return "P7D"
	}
}

func productPrice(id int64) int64    { return 199 + (id*37)%2000 }
func productRecurring(id int64) bool { return id%3 != 0 }

// seedCatalogue returns n products: channel packages mostly, some SVOD and
// TVOD, each granting a few to a few dozen of 400 channels on the live
// service and some on the others.
func seedCatalogue(n int) []seedProduct {
	types := []string{"CHANNEL_GROUP", "CHANNEL_GROUP", "CHANNEL_GROUP", "SVOD", "CHANNELNCATCHUP", "TVOD", "CATCHUP"}
	out := make([]seedProduct, n)
	for i := range out {
		id := int64(i + 1)
		live := make([]string, 0, 40)
		for k := range 3 + int(id*7919%37) {
			live = append(live, fmt.Sprintf("ch-%03d", (id*13+int64(k)*31)%400))
		}
		ch := licensor.Channels{licensor.ServiceLive: live}
		if id%2 == 0 {
			ch[licensor.ServiceCatchup] = live[:len(live)/2]
		}
		if id%5 == 0 {
			ch[licensor.ServiceNPVR] = live[:1]
			ch[licensor.ServiceStartover] = live[:2]
		}
		b, _ := json.Marshal(ch)
		out[i] = seedProduct{
			title:    fmt.Sprintf("Bench package %d", id),
			typ:      types[id%int64(len(types))],
			premium:  id%4 == 0,
			buyable:  true,
			visible:  id%20 != 0,
			recur:    productRecurring(id),
			price:    productPrice(id),
			period:   productPeriod(id),
			channels: string(b),
		}
	}
	return out
}

// licenseSeed describes licenses to seed, by sequence number i in
// from+1 .. from+count.
type licenseSeed struct {
	from, count int64
	users       int64 // user ids are "1" .. users
	products    int64 // product ids are 1 .. products
	createdBase int64 // created_at of the first license
	createdSpan int64 // created_at grows linearly over this many seconds
	now         int64 // ACTIVE licenses that ended before now are stored EXPIRED
	bulk        bool  // drop and rebuild the indexes around the insert
}

const licenseInsertColumns = `user_id, product_id, status, start_date, stop_date, order_id, recurring,
	expiry_date, price_amount, price_currency, purchase_timestamp, payment_method, created_at`

// licenseSelect is the SELECT that computes the seeded licenses from the
// sequence numbers i of src (a table expression with one column i). It is
// the same text on both engines and deterministic: a hash of i decides
// each attribute.
//
//   - users: uniform over 1..users (users defaults to a quarter of the
//     licenses: about four licenses per user);
//   - products: skewed, the square of a uniform variable, so that product 1
//     holds about 6 % of the licenses at 300 products and the last one
//     about 0.2 %;
//   - statuses: 80 % ACTIVE, 8 % EXPIRED, 4 % SUSPENDED, 3 % PROCESSING,
//     2 % ORDER_ERROR, 2 % CHECK_INVALID, 1 % SUSPENDEDADMIN;
//   - created_at grows with i over the span (three years up to now for
//     the main seed); start_date is created_at, or up to 30 days later for
//     one license in ten; stop_date follows from the product's period (30
//     days, a year, a week, or never), so stop dates lie in the past and
//     the future; an ACTIVE license whose stop date has passed is stored
//     as EXPIRED, as the server's expiry would have done;
//   - order_id: unique, present on 90 %; payment method on two thirds.
func licenseSelect(src string, s licenseSeed) string {
	const m = "4294967291" // the largest prime below 2^32
	return fmt.Sprintf(`SELECT CAST(u AS TEXT), p, status, st, stop, oid, (p %% 3 <> 0), stop,
	199 + (p * 37) %% 2000, 'EUR', created, pm, created
FROM (
	SELECT i, u, p, created, st, oid, pm,
		-- An ACTIVE license past its stop date has been moved to EXPIRED
		-- by the server's expiry, as in a database in service.
		CASE WHEN status = 'ACTIVE' AND p %% 10 <> 0 AND st + CASE WHEN p %% 10 < 5 THEN 2592000
			WHEN p %% 10 < 9 THEN 31536000 ELSE 604800 END <= %[9]d THEN 'EXPIRED' ELSE status END AS status,
		CASE WHEN p %% 10 = 0 THEN NULL
			WHEN p %% 10 < 5 THEN st + 2592000
			WHEN p %% 10 < 9 THEN st + 31536000
			ELSE st + 604800 END AS stop
	FROM (
		SELECT i, u, p, created,
			created + CASE WHEN h3 %% 10 = 0 THEN h1 %% 2592000 ELSE 0 END AS st,
			CASE WHEN (h3 / 700) %% 10 = 0 THEN NULL ELSE 'o' || h1 || '-' || i END AS oid,
			CASE (h1 / 13) %% 3 WHEN 0 THEN 'credit_card' WHEN 1 THEN 'wallet' ELSE NULL END AS pm,
			CASE WHEN (h3 / 7) %% 100 < 80 THEN 'ACTIVE'
				WHEN (h3 / 7) %% 100 < 88 THEN 'EXPIRED'
				WHEN (h3 / 7) %% 100 < 92 THEN 'SUSPENDED'
				WHEN (h3 / 7) %% 100 < 95 THEN 'PROCESSING'
				WHEN (h3 / 7) %% 100 < 97 THEN 'ORDER_ERROR'
				WHEN (h3 / 7) %% 100 < 99 THEN 'CHECK_INVALID'
				ELSE 'SUSPENDEDADMIN' END AS status
		FROM (
			SELECT i, h1, h3,
				1 + h1 %% %[2]d AS u,
				1 + ((h2 %% 10000) * (h2 %% 10000) * %[3]d) / 100000000 AS p,
				%[4]d + ((i - %[6]d) * %[5]d) / %[7]d AS created
			FROM (
				SELECT i,
					(i * 2654435761) %% %[8]s AS h1,
					(i * 2246822519) %% %[8]s AS h2,
					(i * 3266489917) %% %[8]s AS h3
				FROM %[1]s
			) AS l1
		) AS l2
	) AS l3
) AS l4`, src, s.users, s.products, s.createdBase, s.createdSpan, s.from+1, max(s.count, 1), m, s.now)
}

// licenseRow is one license written by the storage references, with the
// columns licensor's CreateLicense writes.
type licenseRow struct {
	userID          string
	productID       int64
	start, stop     int64
	orderID         string
	recurring       bool
	price           int64
	createdAt       int64
	purchaseTimeNow int64
}

func (r *licenseRow) args() []any {
	return []any{r.userID, r.productID, "ACTIVE", r.start, r.stop, r.orderID, r.recurring,
		r.stop, r.price, "EUR", r.purchaseTimeNow, nil, r.createdAt}
}

// ----- SQLite -----

type sqliteDB struct {
	db   *sql.DB
	path string
}

func (d *sqliteDB) close() error { return d.db.Close() }

func (d *sqliteDB) seedProducts(ctx context.Context, products []seedProduct) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("seed products: %w", err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO products (title, title_lower, description, type,
	is_premium, is_buyable, is_visible, recurring, price_amount, price_currency, license_period,
	channels, created_at, updated_at, version)
VALUES (?, ?, '', ?, ?, ?, ?, ?, ?, 'EUR', ?, ?, ?, ?, 1)`)
	if err != nil {
		return fmt.Errorf("seed products: %w", err)
	}
	defer stmt.Close()
	now := nowUnix()
	for _, p := range products {
		if _, err := stmt.ExecContext(ctx, p.title, strings.ToLower(p.title), p.typ, p.premium, p.buyable, p.visible,
			p.recur, p.price, nullIfEmpty(p.period), p.channels, now, now); err != nil {
			return fmt.Errorf("seed products: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("seed products: %w", err)
	}
	return checkProductIDs(ctx, d.db.QueryRowContext(ctx, "SELECT count(*), coalesce(max(id), 0) FROM products"), len(products))
}

func (d *sqliteDB) seedLicenses(ctx context.Context, s licenseSeed) error {
	conn, err := d.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("seed licenses: %w", err)
	}
	defer conn.Close()
	var indexes []string
	if s.bulk {
		rows, err := conn.QueryContext(ctx, `SELECT name, sql FROM sqlite_master
WHERE type = 'index' AND tbl_name = 'licenses' AND sql IS NOT NULL`)
		if err != nil {
			return fmt.Errorf("seed licenses: list indexes: %w", err)
		}
		var names []string
		for rows.Next() {
			var name, def string
			if err := rows.Scan(&name, &def); err != nil {
				rows.Close()
				return fmt.Errorf("seed licenses: list indexes: %w", err)
			}
			names, indexes = append(names, name), append(indexes, def)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("seed licenses: list indexes: %w", err)
		}
		for _, n := range names {
			if _, err := conn.ExecContext(ctx, `DROP INDEX "`+n+`"`); err != nil {
				return fmt.Errorf("seed licenses: drop index %s: %w", n, err)
			}
		}
	}
	q := fmt.Sprintf(`WITH RECURSIVE s(i) AS (SELECT %d UNION ALL SELECT i + 1 FROM s WHERE i < %d)
INSERT INTO licenses (%s)
%s`, s.from+1, s.from+s.count, licenseInsertColumns, licenseSelect("s", s))
	if _, err := conn.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("seed licenses: %w", err)
	}
	for _, def := range indexes {
		if _, err := conn.ExecContext(ctx, def); err != nil {
			return fmt.Errorf("seed licenses: rebuild index: %w", err)
		}
	}
	return nil
}

func (d *sqliteDB) maxLicenseID(ctx context.Context) (int64, error) {
	var id int64
	err := d.db.QueryRowContext(ctx, "SELECT coalesce(max(id), 0) FROM licenses").Scan(&id)
	return id, err
}

const sqliteInsertLicense = `INSERT INTO licenses (` + licenseInsertColumns + `)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`

func (d *sqliteDB) insertOne(ctx context.Context, r *licenseRow) error {
	var id int64
	return d.db.QueryRowContext(ctx, sqliteInsertLicense, r.args()...).Scan(&id)
}

func (d *sqliteDB) insertBatch(ctx context.Context, rows []licenseRow) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, sqliteInsertLicense)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for i := range rows {
		var id int64
		if err := stmt.QueryRowContext(ctx, rows[i].args()...).Scan(&id); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func (d *sqliteDB) deleteBatch(ctx context.Context, ids []int64, at int64) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `UPDATE licenses SET deleted_at = ?, deleted_by = ?, deleted_request_id = ?
WHERE id = ? AND deleted_at IS NULL`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, id := range ids {
		if _, err := stmt.ExecContext(ctx, at, "bench", "bench-ref", id); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func (d *sqliteDB) settle(ctx context.Context) error {
	_, err := d.db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
	return err
}

func (d *sqliteDB) size(context.Context) (int64, error) {
	var total int64
	for _, suffix := range []string{"", "-wal"} {
		if fi, err := os.Stat(d.path + suffix); err == nil {
			total += fi.Size()
		}
	}
	return total, nil
}

// ----- PostgreSQL -----

type pgDB struct{ conn *pgx.Conn }

func (d *pgDB) close() error { return d.conn.Close(context.Background()) }

func (d *pgDB) seedProducts(ctx context.Context, products []seedProduct) error {
	err := pgx.BeginFunc(ctx, d.conn, func(tx pgx.Tx) error {
		now := nowUnix()
		for _, p := range products {
			if _, err := tx.Exec(ctx, `INSERT INTO products (title, title_lower, description, type,
	is_premium, is_buyable, is_visible, recurring, price_amount, price_currency, license_period,
	channels, created_at, updated_at, version)
VALUES ($1, $2, '', $3, $4, $5, $6, $7, $8, 'EUR', $9, $10, $11, $12, 1)`,
				p.title, strings.ToLower(p.title), p.typ, p.premium, p.buyable, p.visible,
				p.recur, p.price, nullIfEmpty(p.period), p.channels, now, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("seed products: %w", err)
	}
	return checkProductIDs(ctx, d.conn.QueryRow(ctx, "SELECT count(*), coalesce(max(id), 0) FROM products"), len(products))
}

func (d *pgDB) seedLicenses(ctx context.Context, s licenseSeed) error {
	var indexes []string
	if s.bulk {
		// Indexes that back constraints (the primary key) stay.
		rows, err := d.conn.Query(ctx, `SELECT indexname, indexdef FROM pg_indexes
WHERE schemaname = current_schema() AND tablename = 'licenses'
  AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = 'licenses'::regclass)`)
		if err != nil {
			return fmt.Errorf("seed licenses: list indexes: %w", err)
		}
		var names []string
		for rows.Next() {
			var name, def string
			if err := rows.Scan(&name, &def); err != nil {
				rows.Close()
				return fmt.Errorf("seed licenses: list indexes: %w", err)
			}
			names, indexes = append(names, name), append(indexes, def)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("seed licenses: list indexes: %w", err)
		}
		for _, n := range names {
			if _, err := d.conn.Exec(ctx, "DROP INDEX "+pgx.Identifier{n}.Sanitize()); err != nil {
				return fmt.Errorf("seed licenses: drop index %s: %w", n, err)
			}
		}
	}
	src := fmt.Sprintf("generate_series(%d::bigint, %d::bigint) AS s(i)", s.from+1, s.from+s.count)
	q := "INSERT INTO licenses (" + licenseInsertColumns + ")\n" + licenseSelect(src, s)
	if _, err := d.conn.Exec(ctx, q); err != nil {
		return fmt.Errorf("seed licenses: %w", err)
	}
	for _, def := range indexes {
		if _, err := d.conn.Exec(ctx, def); err != nil {
			return fmt.Errorf("seed licenses: rebuild index: %w", err)
		}
	}
	return nil
}

func (d *pgDB) maxLicenseID(ctx context.Context) (int64, error) {
	var id int64
	err := d.conn.QueryRow(ctx, "SELECT coalesce(max(id), 0) FROM licenses").Scan(&id)
	return id, err
}

const pgInsertLicense = `INSERT INTO licenses (` + licenseInsertColumns + `)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id`

// insertOne is one INSERT in its own (implicit) transaction: one round trip
// and one commit.
func (d *pgDB) insertOne(ctx context.Context, r *licenseRow) error {
	var id int64
	return d.conn.QueryRow(ctx, pgInsertLicense, r.args()...).Scan(&id)
}

// insertBatch pipelines the inserts of one transaction (pgx.Batch), as
// licensor's own CreateLicenses does.
func (d *pgDB) insertBatch(ctx context.Context, rows []licenseRow) error {
	return pgx.BeginFunc(ctx, d.conn, func(tx pgx.Tx) error {
		var b pgx.Batch
		for i := range rows {
			b.Queue(pgInsertLicense, rows[i].args()...)
		}
		return tx.SendBatch(ctx, &b).Close()
	})
}

func (d *pgDB) deleteBatch(ctx context.Context, ids []int64, at int64) error {
	return pgx.BeginFunc(ctx, d.conn, func(tx pgx.Tx) error {
		var b pgx.Batch
		for _, id := range ids {
			b.Queue(`UPDATE licenses SET deleted_at = $1, deleted_by = $2, deleted_request_id = $3
WHERE id = $4 AND deleted_at IS NULL`, at, "bench", "bench-ref", id)
		}
		return tx.SendBatch(ctx, &b).Close()
	})
}

func (d *pgDB) settle(ctx context.Context) error {
	// One statement each: VACUUM cannot run in the implicit transaction of
	// a multi-statement query.
	for _, q := range []string{"VACUUM ANALYZE products", "VACUUM ANALYZE licenses"} {
		if _, err := d.conn.Exec(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

func (d *pgDB) size(ctx context.Context) (int64, error) {
	var n int64
	err := d.conn.QueryRow(ctx, "SELECT pg_database_size(current_database())").Scan(&n)
	return n, err
}

// ----- helpers -----

type scanner interface{ Scan(dest ...any) error }

// checkProductIDs makes sure the products got ids 1..n, which the license
// seed assumes.
func checkProductIDs(_ context.Context, row scanner, n int) error {
	var count, maxID int64
	if err := row.Scan(&count, &maxID); err != nil {
		return fmt.Errorf("seed products: %w", err)
	}
	if count != int64(n) || maxID != int64(n) {
		return fmt.Errorf("seed products: expected ids 1..%d in a fresh database, found %d products up to id %d", n, count, maxID)
	}
	return nil
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
