// Command sqlitecheck inspects a licensor SQLite file for the fault tests:
// it runs PRAGMA integrity_check and foreign_key_check and counts the live
// licenses per 9-character order id prefix, printing JSON. It is a separate
// program so that the checks run at full speed when the tests run with
// -race (the pure-Go SQLite is many times slower under the race detector).
package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"os"

	_ "modernc.org/sqlite"
)

type report struct {
	Integrity  string         `json:"integrity"`
	ForeignKey int            `json:"foreign_key_violations"`
	Counts     map[string]int `json:"counts"`
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: sqlitecheck FILE")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "sqlitecheck:", err)
		os.Exit(1)
	}
}

func run(path string) error {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return err
	}
	defer db.Close()
	r := report{Counts: map[string]int{}}
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&r.Integrity); err != nil {
		return err
	}
	rows, err := db.Query(`PRAGMA foreign_key_check`)
	if err != nil {
		return err
	}
	for rows.Next() {
		r.ForeignKey++
	}
	rows.Close()
	rows, err = db.Query(`SELECT substr(order_id, 1, 9), count(*) FROM licenses
WHERE deleted_at IS NULL AND order_id IS NOT NULL GROUP BY substr(order_id, 1, 9)`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var prefix string
		var n int
		if err := rows.Scan(&prefix, &n); err != nil {
			return err
		}
		r.Counts[prefix] = n
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}
