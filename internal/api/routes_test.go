package api

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/licensor/licensor"
)

// TestOpenAPIDescribesEveryRoute fails when a route exists that the OpenAPI
// document does not describe, or the document describes one that does not
// exist, or their operation ids differ.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(openAPIDocument)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the OpenAPI document is invalid: %v", err)
	}
	documented := map[string]string{} // "METHOD /path" → operationId
	for p, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			documented[strings.ToUpper(method)+" "+p] = op.OperationID
		}
	}
	s := New(nil, Options{MetricsOnAPI: true})
	served := map[string]string{}
	for _, rt := range s.routeTable() {
		served[rt.method+" "+rt.path] = rt.operation
	}
	var problems []string
	for k, op := range served {
		switch d, ok := documented[k]; {
		case !ok:
			problems = append(problems, "served but not documented: "+k)
		case d != op:
			problems = append(problems, "operationId of "+k+": document says "+d+", server says "+op)
		}
	}
	for k := range documented {
		if _, ok := served[k]; !ok {
			problems = append(problems, "documented but not served: "+k)
		}
	}
	slices.Sort(problems)
	for _, p := range problems {
		t.Error(p)
	}
}

// TestRouteTable keeps the table reading like the endpoint table of the API:
// sorted by path within each API, each handler named after its operation id,
// each route's access the security the OpenAPI document declares, and its
// idempotency the Idempotency-Key header the document gives it (none,
// optional, required).
func TestRouteTable(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(openAPIDocument)
	if err != nil {
		t.Fatal(err)
	}
	s := New(nil, Options{MetricsOnAPI: true})
	routes := s.routeTable()
	api := func(path string) string {
		switch {
		case strings.HasPrefix(path, basePath):
			return "management"
		case strings.HasPrefix(path, endUserPath):
			return "end-user"
		}
		return "operations"
	}
	for i := 1; i < len(routes); i++ {
		a, b := routes[i-1], routes[i]
		if api(a.path) == api(b.path) && a.path > b.path {
			t.Errorf("route table: %s comes before %s", a.path, b.path)
		}
	}
	for _, rt := range routes {
		name := runtime.FuncForPC(reflect.ValueOf(rt.handle).Pointer()).Name()
		name = strings.TrimSuffix(name[strings.LastIndex(name, ".")+1:], "-fm")
		if want := string(unicode.ToLower(rune(rt.operation[0]))) + rt.operation[1:]; name != want {
			t.Errorf("%s %s: handler %s, want %s (its operation id)", rt.method, rt.path, name, want)
		}
		op := doc.Paths.Find(rt.path).GetOperation(rt.method)
		if op == nil {
			continue // TestOpenAPIDescribesEveryRoute reports it
		}
		security := doc.Security
		if op.Security != nil {
			security = *op.Security
		}
		var schemes []string
		for _, req := range security {
			for name := range req {
				schemes = append(schemes, name)
			}
		}
		want := map[access][]string{anyone: nil, readKey: {"ApiKey"}, writeKey: {"ApiKey"}, userToken: {"Bearer"}}[rt.access]
		if !slices.Equal(schemes, want) {
			t.Errorf("%s %s: the document's security is %v, the route's access wants %v", rt.method, rt.path, schemes, want)
		}
		documented := noKey
		for _, p := range op.Parameters {
			if p.Value != nil && p.Value.In == "header" && p.Value.Name == "Idempotency-Key" {
				documented = keyOptional
				if p.Value.Required {
					documented = keyRequired
				}
			}
		}
		if documented != rt.idempotency {
			t.Errorf("%s %s: the document's Idempotency-Key is %v, the route's %v (0 none, 1 optional, 2 required)", rt.method, rt.path, documented, rt.idempotency)
		}
	}
}

// TestOpenAPINullableSchemas keeps the nullable values generator-friendly:
// OpenAPI 3.0's nullable only widens a type declared in the same schema
// (nullable beside allOf: [$ref] has no effect, and strict clients then
// reject the nulls the server sends), so each nullable value is an inline
// copy of its component schema. The copies of one attribute must agree
// with each other, so that they cannot drift apart.
func TestOpenAPINullableSchemas(t *testing.T) {
	var doc any
	if err := json.Unmarshal(openAPIDocument, &doc); err != nil {
		t.Fatal(err)
	}
	shapes := map[string]string{} // property name → its constraints
	first := map[string]string{}  // property name → where they were first seen
	var walk func(v any, at string)
	walk = func(v any, at string) {
		switch v := v.(type) {
		case map[string]any:
			if v["nullable"] == true && v["type"] == nil {
				t.Errorf("%s: nullable without a type", at)
			}
			if props, ok := v["properties"].(map[string]any); ok {
				for name, p := range props {
					p, ok := p.(map[string]any)
					if !ok || p["nullable"] != true {
						continue
					}
					shape := map[string]any{}
					for k, c := range p {
						switch k {
						case "description", "example", "default", "nullable":
						default:
							shape[k] = c
						}
					}
					b, _ := json.Marshal(shape)
					if s, ok := shapes[name]; ok && s != string(b) {
						t.Errorf("nullable %q at %s is %s, but at %s it is %s", name, at, b, first[name], s)
					} else if !ok {
						shapes[name], first[name] = string(b), at
					}
				}
			}
			for k, c := range v {
				walk(c, at+"/"+k)
			}
		case []any:
			for i, c := range v {
				walk(c, fmt.Sprintf("%s/%d", at, i))
			}
		}
	}
	walk(doc, "#")
	if len(shapes) == 0 {
		t.Fatal("no nullable attribute found: the walk is broken")
	}
}

// TestAPIGuideNamesEveryOperation keeps docs/api.md, the API in prose, in
// step with the routes: every operation has a row in one of its tables,
// and every row names an operation that exists.
func TestAPIGuideNamesEveryOperation(t *testing.T) {
	guide, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]bool{}
	for _, line := range strings.Split(string(guide), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 3 || !strings.Contains(line, "`") {
			continue
		}
		if op := strings.TrimSpace(cells[1]); op != "" && unicode.IsUpper(rune(op[0])) && !strings.ContainsAny(op, " `") {
			rows[op] = true
		}
	}
	served := map[string]bool{}
	for _, rt := range New(nil, Options{MetricsOnAPI: true}).routeTable() {
		served[rt.operation] = true
		if !rows[rt.operation] {
			t.Errorf("docs/api.md has no row for %s (%s %s)", rt.operation, rt.method, rt.path)
		}
	}
	for op := range rows {
		if !served[op] {
			t.Errorf("docs/api.md names %s, which is not an operation", op)
		}
	}
}

// TestOpenAPIEventAttribution checks that the Event schema names the actor
// and request_id the server gives the events it makes by itself (expiries):
// the document said request_id was empty while the server sent "expiry".
func TestOpenAPIEventAttribution(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(openAPIDocument)
	if err != nil {
		t.Fatal(err)
	}
	ev := doc.Components.Schemas["Event"]
	if ev == nil || ev.Value == nil {
		t.Fatal("no Event schema")
	}
	attrs := ev.Value.Properties["attributes"]
	if attrs == nil || attrs.Value == nil {
		t.Fatal("the Event schema has no attributes")
	}
	for prop, want := range map[string]string{"actor": licensor.ActorSystem, "request_id": licensor.RequestIDExpiry} {
		p := attrs.Value.Properties[prop]
		if p == nil || p.Value == nil {
			t.Errorf("Event attributes: no %s", prop)
			continue
		}
		if d := p.Value.Description; !strings.Contains(d, "`"+want+"` for expiries") {
			t.Errorf("Event attributes.%s: description %q does not say it is `%s` for expiries", prop, d, want)
		}
	}
}
