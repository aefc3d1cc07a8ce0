package api_test

import (
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/licensor/licensor/internal/api"
)

// TestMonitoringNamesExportedMetrics keeps the shipped alert rules and
// Grafana dashboard (monitoring/) in step with the metrics: every licensor_
// series they query is exported by a server that has seen some traffic, so
// a renamed metric cannot leave an alert that never fires.
func TestMonitoringNamesExportedMetrics(t *testing.T) {
	en := newEnv(t, engines(t)[0], func(o *api.Options) { o.MetricsOnAPI = true })
	pid := en.createProduct(map[string]any{})
	en.must(201, req{method: "POST", path: base + "/licenses/batch_create", body: map[string]any{"data": []any{licenseObject("m", pid, nil)}}})
	en.must(401, req{method: "GET", path: base + "/licenses", key: "-"})
	resp, err := http.Get(en.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	exported := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if name, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, _ := strings.Cut(name, " ")
			exported[name] = true
			if typ == "histogram" {
				for _, s := range []string{"_bucket", "_sum", "_count"} {
					exported[name+s] = true
				}
			}
		}
	}
	name := regexp.MustCompile(`\b(licensor|process|go)_[a-z_]+\b`)
	for _, file := range []string{"../../monitoring/alerts.yml", "../../monitoring/grafana-dashboard.json"} {
		text, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		used := name.FindAllString(string(text), -1)
		if len(used) < 5 {
			t.Fatalf("%s: found only %v: the pattern is broken", file, used)
		}
		for _, m := range used {
			if !exported[m] {
				t.Errorf("%s queries %s, which the server does not export", file, m)
			}
		}
	}
}
