package licensor_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestReadmeLayout keeps the README's layout table true to the tree: every
// package directory under internal/ has its row, and every internal/ path
// the table names exists.
func TestReadmeLayout(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(b), "\n## Layout\n")
	if !ok {
		t.Fatal("README.md has no ## Layout section")
	}
	table, _, _ = strings.Cut(table, "\n## ")
	named := map[string]bool{}
	for _, m := range regexp.MustCompile("`(internal/[a-z/]+)`").FindAllStringSubmatch(table, -1) {
		named[m[1]] = true
	}
	var dirs []string
	err = filepath.WalkDir("internal", func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if d.Name() == "testdata" {
			return filepath.SkipDir
		}
		if gofiles, _ := filepath.Glob(filepath.Join(path, "*.go")); len(gofiles) > 0 {
			dirs = append(dirs, filepath.ToSlash(path))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if !named[d] {
			t.Errorf("README.md's layout table has no row for %s", d)
		}
	}
	for p := range named {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("README.md's layout table names %s: %v", p, err)
		}
	}
	if len(dirs) == 0 || !slices.Contains(dirs, "internal/api") {
		t.Errorf("found packages %v", dirs)
	}
}
