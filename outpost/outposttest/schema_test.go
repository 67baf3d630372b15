package outposttest

import (
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"
)

// A small OpenAPI checker: enough of JSON Schema to say whether the core's
// answers have the properties, types and enum values authentik's schema
// requires of the components the core serves.

var schemaOnce = sync.OnceValues(func() (map[string]any, error) {
	path := os.Getenv("AKOUTPOST_SCHEMA")
	if path == "" {
		path = "../../../shared/authentik/schema.yml"
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", path, err)
	}
	comps, _ := doc["components"].(map[string]any)
	schemas, _ := comps["schemas"].(map[string]any)
	if schemas == nil {
		return nil, fmt.Errorf("%s has no components.schemas", path)
	}
	return schemas, nil
})

// checkSchema fails t when v does not match the named component schema.
func checkSchema(t *testing.T, component string, v any) {
	t.Helper()
	errs, err := schemaErrors(component, v)
	if err != nil {
		// Outside CI the rest of the calling test still runs; only the
		// shape check is left out.
		schemaMissing(t, err)
		t.Logf("authentik schema not available (%v); %s is not checked against it", err, component)
		return
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		t.Errorf("%s does not match the schema:\n  %s", component, strings.Join(errs, "\n  "))
	}
}

func schemaErrors(component string, v any) ([]string, error) {
	schemas, err := schemaOnce()
	if err != nil {
		return nil, err
	}
	var errs []string
	c := checker{schemas: schemas, errs: &errs}
	c.check(component, map[string]any{"$ref": "#/components/schemas/" + component}, v)
	return errs, nil
}

// schemaMissing fails t under CI=true, where ../shared (with
// authentik/schema.yml) always sits beside the clone: there a missing
// schema means the shape checks silently stopped running.
func schemaMissing(t *testing.T, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("authentik schema is required in CI (set AKOUTPOST_SCHEMA or provide ../shared/authentik/schema.yml): %v", err)
	}
}

// TestSchemaAvailable fails under CI=true when the schema cannot be read,
// even if no other test happens to check a shape.
func TestSchemaAvailable(t *testing.T) {
	if _, err := schemaOnce(); err != nil {
		schemaMissing(t, err)
		t.Skipf("authentik schema not available: %v", err)
	}
}

// The checker must be able to fail, or every schema test passes vacuously.
func TestSchemaCheckerCatchesMistakes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		component string
		v         any
	}{
		{"missing required", "Pagination", map[string]any{"next": 1.0}},
		{"wrong type", "CertificateData", map[string]any{"data": 1.0}},
		{"not nullable", "CertificateData", map[string]any{"data": nil}},
		{"bad enum", "OutpostTypeEnum", "radio"},
		{"integer with fraction", "PartialGroup", map[string]any{"pk": "x", "name": "n", "num_pk": 1.5}},
		{"nested", "PaginatedOutpostList", map[string]any{"pagination": map[string]any{}, "results": []any{}, "autocomplete": map[string]any{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs, err := schemaErrors(tc.component, tc.v)
			if err != nil {
				schemaMissing(t, err)
				t.Skipf("authentik schema not available: %v", err)
			}
			if len(errs) == 0 {
				t.Errorf("%v passed as %s", tc.v, tc.component)
			}
		})
	}
}

type checker struct {
	schemas map[string]any
	errs    *[]string
}

func (c checker) fail(path, format string, a ...any) {
	*c.errs = append(*c.errs, path+": "+fmt.Sprintf(format, a...))
}

func (c checker) check(path string, s map[string]any, v any) {
	if ref, ok := s["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/components/schemas/")
		target, ok := c.schemas[name].(map[string]any)
		if !ok {
			c.fail(path, "unknown schema %s", ref)
			return
		}
		c.check(path, target, v)
		return
	}
	if v == nil {
		if s["nullable"] == true || len(s) == 0 {
			return
		}
		// allOf with nullable beside it is how the schema writes
		// nullable references.
		c.fail(path, "is null but not nullable")
		return
	}
	if all, ok := s["allOf"].([]any); ok {
		for _, sub := range all {
			c.check(path, sub.(map[string]any), v)
		}
	}
	if one, ok := s["oneOf"].([]any); ok {
		disc, _ := s["discriminator"].(map[string]any)
		mapping, _ := disc["mapping"].(map[string]any)
		prop, _ := disc["propertyName"].(string)
		obj, _ := v.(map[string]any)
		key, _ := obj[prop].(string)
		ref, ok := mapping[key].(string)
		if !ok {
			c.fail(path, "discriminator %s=%q matches none of %d schemas", prop, key, len(one))
			return
		}
		c.check(path, map[string]any{"$ref": ref}, v)
		return
	}
	if enum, ok := s["enum"].([]any); ok {
		found := false
		for _, e := range enum {
			found = found || fmt.Sprint(e) == fmt.Sprint(v)
		}
		if !found {
			c.fail(path, "value %v is not one of %v", v, enum)
		}
	}
	switch s["type"] {
	case "object":
		obj, ok := v.(map[string]any)
		if !ok {
			c.fail(path, "want an object, got %T", v)
			return
		}
		props, _ := s["properties"].(map[string]any)
		for _, r := range asList(s["required"]) {
			if _, ok := obj[r.(string)]; !ok {
				c.fail(path, "required property %q missing", r)
			}
		}
		for k, val := range obj {
			if ps, ok := props[k].(map[string]any); ok {
				c.check(path+"."+k, ps, val)
			} else if ap, ok := s["additionalProperties"].(map[string]any); ok {
				c.check(path+"."+k, ap, val)
			}
		}
	case "array":
		arr, ok := v.([]any)
		if !ok {
			c.fail(path, "want an array, got %T", v)
			return
		}
		items, _ := s["items"].(map[string]any)
		for i, e := range arr {
			c.check(fmt.Sprintf("%s[%d]", path, i), items, e)
		}
	case "string":
		if _, ok := v.(string); !ok {
			c.fail(path, "want a string, got %T", v)
		}
	case "integer":
		f, ok := v.(float64)
		if !ok || f != math.Trunc(f) {
			c.fail(path, "want an integer, got %v", v)
		}
	case "number":
		if _, ok := v.(float64); !ok {
			c.fail(path, "want a number, got %T", v)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			c.fail(path, "want a boolean, got %T", v)
		}
	}
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}
