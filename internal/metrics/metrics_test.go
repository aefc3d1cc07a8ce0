package metrics

import (
	"fmt"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/licensor/licensor"
)

// TestObserversBounded: the observers of the route, method and status
// combinations seen are resolved once, at most maxObservers of them;
// methods a client invents are one label value, "other".
func TestObserversBounded(t *testing.T) {
	m := New(licensor.Engine{})
	const route = "GET /api/license/management/v4/licenses/{license_id}"
	done := func(route, method string, status int) {
		m.Start()
		m.Done(route, method, status, time.Millisecond)
	}
	for range 3 {
		done(route, "GET", 200)
	}
	done(route, "GET", 404)
	for i := range maxObservers + 10 {
		done("", "M"+strconv.Itoa(i), 404)
	}
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	text := w.Body.String()
	r := `route="` + route + `"`
	for _, want := range []string{
		`licensor_http_requests_total{method="GET",` + r + `,status="200"} 3`,
		`licensor_http_requests_total{method="GET",` + r + `,status="404"} 1`,
		`licensor_http_request_duration_seconds_count{method="GET",` + r + `} 4`,
		fmt.Sprintf(`licensor_http_requests_total{method="other",route="unmatched",status="404"} %d`, maxObservers+10),
		"licensor_http_requests_in_flight 0",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(text, `method="M0"`) {
		t.Errorf("an invented method is a label value of its own")
	}
	if n := len(*m.observers.Load()); n != 3 {
		t.Errorf("%d resolved observers, want 3 (GET 200, GET 404, other 404)", n)
	}
	// Past the bound, a new combination is still counted.
	for i := range maxObservers {
		done(route, "GET", 300+i)
	}
	if n := len(*m.observers.Load()); n != maxObservers {
		t.Errorf("%d resolved observers, want at most %d", n, maxObservers)
	}
}
