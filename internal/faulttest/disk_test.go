package faulttest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mountTmpfs mounts a tmpfs of size bytes on a fresh directory and returns
// it; it skips the test when mounting is not permitted (not root, or in a
// container without CAP_SYS_ADMIN).
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("a small disk is simulated with a tmpfs, and mounting one is not permitted here (run as root): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			_ = exec.Command("umount", "-l", dir).Run()
			t.Logf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fill writes a file until the disk is full and returns its path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	// The last bytes: fill the remaining partial block too.
	for _, n := range []int{4096, 512, 1} {
		for {
			if _, err := f.Write(chunk[:n]); err != nil {
				break
			}
		}
	}
	return path
}

// TestSQLiteDiskFull fills the disk under a running server's SQLite file.
// Writes must fail with 503 UNAVAILABLE (a storage code, never a bare 500)
// and an error line in the log, reads must go on, no batch may be partly
// written, the integrity check must pass, and writes must work again once
// space returns, without a restart. Then the file system is made
// read-only while the server is down: the server must refuse to start with
// a clear message, and start again once the disk is writable.
//
// The disk is a 16 MiB tmpfs mounted for the test (mounting needs root;
// otherwise the test is skipped). A read-only remount is refused by Linux
// while a process holds the database open for writing (EBUSY), hence the
// read-only case at start-up only.
func TestSQLiteDiskFull(t *testing.T) {
	dir := mountTmpfs(t, 16<<20)
	db := filepath.Join(dir, "licensor.db")
	key := createKey(t, db, "bss", "write")
	srv := startServer(t, db)
	product := createProduct(t, srv, key)
	mustCall(t, 201, "POST", srv.url+base+"/licenses/batch_create", key, batchBody("before-00", product, 100), nil)

	filler := fill(t, dir)
	// The write-ahead log may still have room from before; batches of 1000
	// outgrow it at once.
	var (
		failed   []string // prefixes of the batches refused
		wrote    int
		detail   string
		firstErr time.Duration
	)
	start := time.Now()
	for i := 0; i < 20 && len(failed) < 3; i++ {
		// The third refused batch carries an Idempotency-Key: it fails on
		// claiming the key, the others in the write itself.
		prefix := fmt.Sprintf("full-%04d", i)
		var header map[string]string
		if len(failed) == 2 {
			header = map[string]string{"Idempotency-Key": prefix}
		}
		r := call(context.Background(), "POST", srv.url+base+"/licenses/batch_create", key, batchBody(prefix, product, batchItems), header)
		switch {
		case r.err != nil:
			t.Fatalf("batch on a full disk: %v", r.err)
		case r.status == 201:
			wrote++
		case r.status == 503 && slices.Equal(r.codes(), []string{"UNAVAILABLE"}):
			if firstErr == 0 {
				firstErr = time.Since(start)
			}
			failed = append(failed, prefix)
			detail = string(r.body)
		default:
			t.Fatalf("batch on a full disk: %s, want 503 UNAVAILABLE", r)
		}
	}
	if len(failed) == 0 {
		t.Fatalf("20 batches of %d were written on a full disk", batchItems)
	}
	for _, leak := range []string{dir, "SQLITE", "sqlite", "(13)"} {
		if strings.Contains(detail, leak) {
			t.Errorf("the error body carries %q: %s", leak, detail)
		}
	}
	// A single create and a product fail the same way.
	r := call(context.Background(), "POST", srv.url+base+"/licenses", key, []byte(`{"data":`+licenseJSON("u1", product, "full-single")+`}`), nil)
	if r.status != 503 {
		t.Errorf("create on a full disk: %s, want 503", r)
	}
	// Reads go on, and so does readiness (the database answers).
	mustCall(t, 200, "GET", srv.url+base+"/licenses?page[size]=5", key, nil, nil)
	mustCall(t, 200, "GET", srv.url+"/readyz", "", nil, nil)

	// The log says what happened, at error level, with the request id.
	var logged []string
	for _, rec := range srv.logs.records("request") {
		if rec["status"] == float64(503) && rec["level"] == "ERROR" && rec["request_id"] != "" {
			if err, _ := rec["err"].(string); strings.Contains(err, "full") {
				logged = append(logged, err)
			}
		}
	}
	if len(logged) < len(failed) {
		t.Errorf("%d error log lines saying the disk is full, want one per refused request (%d)", len(logged), len(failed))
	}

	// Space returns: writes work again on the same process.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	var recovered time.Duration
	freed := time.Now()
	if !waitFor(10*time.Second, func() bool {
		r := call(context.Background(), "POST", srv.url+base+"/licenses/batch_create", key, batchBody(fmt.Sprintf("after-%03d", time.Since(freed).Milliseconds()%1000), product, 10), nil)
		return r.status == 201
	}) {
		t.Fatal("writes did not resume after the disk had space again")
	}
	recovered = time.Since(freed)
	// A refused batch retried under its Idempotency-Key now runs.
	keyed := failed[len(failed)-1]
	retried := call(context.Background(), "POST", srv.url+base+"/licenses/batch_create", key, batchBody(keyed, product, batchItems),
		map[string]string{"Idempotency-Key": keyed})
	if retried.status != 201 || retried.header.Get("Idempotent-Replayed") != "" {
		t.Errorf("retry of a refused batch: %s, want a fresh 201", retried)
	}

	// No refused batch is there in part; the file is sound.
	counts := checkSQLite(t, db)
	for _, p := range failed[:len(failed)-1] {
		if counts[p] != 0 {
			t.Errorf("refused batch %s has %d licenses", p, counts[p])
		}
	}
	if counts[keyed] != batchItems {
		t.Errorf("retried batch has %d licenses", counts[keyed])
	}
	srv.stop(t)
	t.Logf("full disk: %d batches written before the write-ahead log ran out of room, %d refused with 503 UNAVAILABLE (the first %v after the disk filled), reads and /readyz 200 meanwhile; writes resumed %v after space returned; integrity ok",
		wrote, len(failed), firstErr.Round(time.Millisecond), recovered.Round(time.Millisecond))
	t.Logf("log lines: %s", strings.Join(logged, " | "))

	// Read-only file system at start-up: a clear refusal, then recovery.
	if out, err := exec.Command("mount", "-o", "remount,ro", dir).CombinedOutput(); err != nil {
		t.Fatalf("remount read-only: %v: %s", err, out)
	}
	cmd := exec.Command(binPath, "serve", "--listen", "127.0.0.1:0", "--db", db)
	cmd.Env = append(os.Environ(), "DATABASE_URL=")
	out, err := cmd.CombinedOutput()
	if out2, err := exec.Command("mount", "-o", "remount,rw", dir).CombinedOutput(); err != nil {
		t.Fatalf("remount read-write: %v: %s", err, out2)
	}
	if err == nil {
		t.Fatalf("licensor serve ran on a read-only file system:\n%s", out)
	}
	msg := strings.TrimSpace(string(out))
	if !strings.Contains(msg, "read") && !strings.Contains(msg, "open") {
		t.Errorf("the refusal does not say the database cannot be opened or written: %s", msg)
	}
	t.Logf("read-only at start-up: %s", msg)
	srv = startServer(t, db)
	mustCall(t, 200, "GET", srv.url+base+"/licenses?page[size]=1", key, nil, nil)
	mustCall(t, 201, "POST", srv.url+base+"/licenses", key, []byte(`{"data":`+licenseJSON("u1", product, "after-readonly")+`}`), nil)
	srv.stop(t)
	checkSQLite(t, db)
}
