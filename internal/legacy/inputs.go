package legacy

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Input is one source of legacy records.
type Input struct {
	Path   string // "-" for standard input
	Format Format // FormatJSON, FormatCSV, or FormatAuto to sniff the content
	Size   int64  // bytes; -1 when unknown (standard input)
}

// Extensions of the files taken from a directory, by format.
var (
	jsonExtensions = []string{".json", ".jsonl", ".ndjson"}
	csvExtensions  = []string{".csv"}
)

// FormatOf returns the format of a file by its extension: FormatJSON for
// .json, .jsonl and .ndjson, FormatCSV for .csv, FormatAuto otherwise.
func FormatOf(path string) Format {
	ext := strings.ToLower(filepath.Ext(path))
	for _, e := range jsonExtensions {
		if ext == e {
			return FormatJSON
		}
	}
	for _, e := range csvExtensions {
		if ext == e {
			return FormatCSV
		}
	}
	return FormatAuto
}

// Inputs expands the inputs named on a command line, in order: "-" is
// standard input (at most once); a file is read in format f, or with
// FormatAuto in the format of its extension, or sniffed when that says
// nothing; a directory stands for the files below it, in lexical order, that
// have an extension of format f (with FormatAuto, of either format), hidden
// files and directories (".name") excepted.
func Inputs(args []string, f Format) ([]Input, error) {
	var out []Input
	stdin := false
	for _, a := range args {
		if a == "-" {
			if stdin {
				return nil, fmt.Errorf("standard input (-) is named twice")
			}
			stdin = true
			out = append(out, Input{Path: "-", Format: f, Size: -1})
			continue
		}
		info, err := os.Stat(a)
		if err != nil {
			return nil, err
		}
		if !info.IsDir() {
			in := Input{Path: a, Format: f, Size: info.Size()}
			if f == FormatAuto {
				in.Format = FormatOf(a)
			}
			out = append(out, in)
			continue
		}
		found := 0
		err = filepath.WalkDir(a, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if path != a && strings.HasPrefix(d.Name(), ".") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.IsDir() {
				return nil
			}
			ff := FormatOf(path)
			if ff == FormatAuto || (f != FormatAuto && ff != f) {
				return nil
			}
			info, err := os.Stat(path) // follows a symbolic link
			if err != nil {
				return err
			}
			if !info.Mode().IsRegular() {
				return nil
			}
			out = append(out, Input{Path: path, Format: ff, Size: info.Size()})
			found++
			return nil
		})
		if err != nil {
			return nil, err
		}
		if found == 0 {
			return nil, fmt.Errorf("directory %s holds no %s files", a, describeExtensions(f))
		}
	}
	return out, nil
}

func describeExtensions(f Format) string {
	switch f {
	case FormatJSON:
		return strings.Join(jsonExtensions, ", ")
	case FormatCSV:
		return strings.Join(csvExtensions, ", ")
	}
	return strings.Join(append(append([]string{}, jsonExtensions...), csvExtensions...), ", ")
}
