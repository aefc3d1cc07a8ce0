package api

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
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
	for _, rt := range slices.Concat(s.managementRoutes(), s.endUserRoutes(), s.publicRoutes()) {
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
