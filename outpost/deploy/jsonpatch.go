package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// applyPatch applies an RFC 6902 JSON Patch to a document decoded from JSON
// (maps, slices, strings, json.Number, bools and nil) and returns the new
// document. Operations run in order; the first failing one stops the patch.
// Errors name the operation and path but never a value, because the Secret's
// values are the outpost token.
func applyPatch(doc any, ops []patchOp) (any, error) {
	for i, op := range ops {
		var err error
		doc, err = applyOp(doc, op)
		if err != nil {
			return nil, fmt.Errorf("operation %d (%s %s): %w", i, op.Op, op.Path, err)
		}
	}
	return doc, nil
}

// patchOp is one RFC 6902 operation. HasValue tells a null value from none.
type patchOp struct {
	Op, Path, From string
	Value          any
	HasValue       bool
}

// patchesFromSettings converts kubernetes_json_patches, decoded from JSON
// into maps, into operations whose values are normalised the way the
// documents are (numbers as json.Number).
func patchesFromSettings(in map[string][]map[string]any) (map[string][]patchOp, error) {
	out := make(map[string][]patchOp, len(in))
	for component, ops := range in {
		for i, m := range ops {
			var op patchOp
			for key, dst := range map[string]*string{"op": &op.Op, "path": &op.Path, "from": &op.From} {
				v, ok := m[key]
				if !ok {
					continue
				}
				s, ok := v.(string)
				if !ok {
					return nil, fmt.Errorf("deploy: kubernetes_json_patches[%q] operation %d: %q is not a string", component, i, key)
				}
				*dst = s
			}
			if v, ok := m["value"]; ok {
				raw, err := json.Marshal(v)
				if err != nil {
					return nil, fmt.Errorf("deploy: kubernetes_json_patches[%q] operation %d: value: %w", component, i, err)
				}
				if op.Value, err = decodeJSON(raw); err != nil {
					return nil, fmt.Errorf("deploy: kubernetes_json_patches[%q] operation %d: value: %w", component, i, err)
				}
				op.HasValue = true
			}
			out[component] = append(out[component], op)
		}
	}
	return out, nil
}

func applyOp(doc any, op patchOp) (any, error) {
	path, err := parsePointer(op.Path)
	if err != nil {
		return nil, err
	}
	switch op.Op {
	case "add", "replace", "test":
		if !op.HasValue {
			return nil, errors.New(`missing "value"`)
		}
		val := deepCopy(op.Value)
		switch op.Op {
		case "add":
			return addAt(doc, path, val)
		case "replace":
			return replaceAt(doc, path, val)
		default:
			cur, err := getAt(doc, path)
			if err != nil {
				return nil, err
			}
			if !jsonEqual(cur, val) {
				return nil, errors.New("test failed: the value differs")
			}
			return doc, nil
		}
	case "remove":
		doc, _, err := removeAt(doc, path)
		return doc, err
	case "move", "copy":
		from, err := parsePointer(op.From)
		if err != nil {
			return nil, fmt.Errorf("from: %w", err)
		}
		if op.Op == "move" {
			if len(path) > len(from) && equalTokens(path[:len(from)], from) {
				return nil, errors.New("cannot move a value into itself")
			}
			var val any
			doc, val, err = removeAt(doc, from)
			if err != nil {
				return nil, fmt.Errorf("from: %w", err)
			}
			return addAt(doc, path, val)
		}
		val, err := getAt(doc, from)
		if err != nil {
			return nil, fmt.Errorf("from: %w", err)
		}
		return addAt(doc, path, deepCopy(val))
	default:
		return nil, fmt.Errorf("unknown op %q", op.Op)
	}
}

// parsePointer splits an RFC 6901 JSON Pointer into unescaped tokens.
func parsePointer(p string) ([]string, error) {
	if p == "" {
		return nil, nil
	}
	if !strings.HasPrefix(p, "/") {
		return nil, fmt.Errorf("path %q does not start with /", p)
	}
	parts := strings.Split(p[1:], "/")
	for i, t := range parts {
		parts[i] = strings.NewReplacer("~1", "/", "~0", "~").Replace(t)
	}
	return parts, nil
}

func equalTokens(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// arrayIndex parses an array index token; "-" (past the end) is allowed only
// when appending.
func arrayIndex(tok string, n int, appending bool) (int, error) {
	if tok == "-" && appending {
		return n, nil
	}
	if tok == "" || (len(tok) > 1 && tok[0] == '0') {
		return 0, fmt.Errorf("bad array index %q", tok)
	}
	i, err := strconv.Atoi(tok)
	if err != nil || i < 0 {
		return 0, fmt.Errorf("bad array index %q", tok)
	}
	limit := n - 1
	if appending {
		limit = n
	}
	if i > limit {
		return 0, fmt.Errorf("array index %d out of range", i)
	}
	return i, nil
}

func getAt(doc any, path []string) (any, error) {
	cur := doc
	for _, tok := range path {
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[tok]
			if !ok {
				return nil, fmt.Errorf("no member %q", tok)
			}
			cur = v
		case []any:
			i, err := arrayIndex(tok, len(c), false)
			if err != nil {
				return nil, err
			}
			cur = c[i]
		default:
			return nil, fmt.Errorf("cannot descend into a scalar at %q", tok)
		}
	}
	return cur, nil
}

// update runs fn on the container that holds the last token of path and
// stores the container fn returns (slices may grow or shrink) in its parent.
func update(doc any, path []string, fn func(parent any, last string) (any, error)) (any, error) {
	if len(path) == 0 {
		return nil, errors.New("the document root cannot be changed this way")
	}
	if len(path) == 1 {
		return fn(doc, path[0])
	}
	child, err := getAt(doc, path[:1])
	if err != nil {
		return nil, err
	}
	newChild, err := update(child, path[1:], fn)
	if err != nil {
		return nil, err
	}
	switch c := doc.(type) {
	case map[string]any:
		c[path[0]] = newChild
	case []any:
		i, _ := arrayIndex(path[0], len(c), false)
		c[i] = newChild
	}
	return doc, nil
}

func addAt(doc any, path []string, val any) (any, error) {
	if len(path) == 0 {
		return val, nil
	}
	return update(doc, path, func(parent any, last string) (any, error) {
		switch c := parent.(type) {
		case map[string]any:
			c[last] = val
			return c, nil
		case []any:
			i, err := arrayIndex(last, len(c), true)
			if err != nil {
				return nil, err
			}
			out := make([]any, 0, len(c)+1)
			out = append(out, c[:i]...)
			out = append(out, val)
			return append(out, c[i:]...), nil
		default:
			return nil, errors.New("parent is not an object or array")
		}
	})
}

func replaceAt(doc any, path []string, val any) (any, error) {
	if len(path) == 0 {
		return val, nil
	}
	return update(doc, path, func(parent any, last string) (any, error) {
		switch c := parent.(type) {
		case map[string]any:
			if _, ok := c[last]; !ok {
				return nil, fmt.Errorf("no member %q to replace", last)
			}
			c[last] = val
			return c, nil
		case []any:
			i, err := arrayIndex(last, len(c), false)
			if err != nil {
				return nil, err
			}
			c[i] = val
			return c, nil
		default:
			return nil, errors.New("parent is not an object or array")
		}
	})
}

// removeAt removes the value at path and returns the document and the value.
func removeAt(doc any, path []string) (any, any, error) {
	var removed any
	out, err := update(doc, path, func(parent any, last string) (any, error) {
		switch c := parent.(type) {
		case map[string]any:
			v, ok := c[last]
			if !ok {
				return nil, fmt.Errorf("no member %q to remove", last)
			}
			removed = v
			delete(c, last)
			return c, nil
		case []any:
			i, err := arrayIndex(last, len(c), false)
			if err != nil {
				return nil, err
			}
			removed = c[i]
			out := make([]any, 0, len(c)-1)
			out = append(out, c[:i]...)
			return append(out, c[i+1:]...), nil
		default:
			return nil, errors.New("parent is not an object or array")
		}
	})
	return out, removed, err
}

// decodeJSON decodes with json.Number so integers keep their exact text.
func decodeJSON(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// jsonEqual compares two decoded JSON values, numbers by value.
func jsonEqual(a, b any) bool {
	an, aok := a.(json.Number)
	bn, bok := b.(json.Number)
	if aok && bok {
		af, err1 := an.Float64()
		bf, err2 := bn.Float64()
		return err1 == nil && err2 == nil && af == bf
	}
	switch av := a.(type) {
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok || len(av) != len(bv) {
			return false
		}
		for k, x := range av {
			y, ok := bv[k]
			if !ok || !jsonEqual(x, y) {
				return false
			}
		}
		return true
	case []any:
		bv, ok := b.([]any)
		if !ok || len(av) != len(bv) {
			return false
		}
		for i := range av {
			if !jsonEqual(av[i], bv[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

func deepCopy(v any) any {
	switch c := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(c))
		for k, x := range c {
			out[k] = deepCopy(x)
		}
		return out
	case []any:
		out := make([]any, len(c))
		for i, x := range c {
			out[i] = deepCopy(x)
		}
		return out
	}
	return v
}
