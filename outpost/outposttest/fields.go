package outposttest

import "fmt"

// fields is an entry's identifiers and attrs, merged and resolved.
type fields struct {
	entry *bpEntry
	v     map[string]any
}

func (f fields) errorf(key, format string, a ...any) error {
	return fmt.Errorf("blueprint: %s: %s: %s", f.entry, key, fmt.Sprintf(format, a...))
}

func (f fields) has(k string) bool { _, ok := f.v[k]; return ok }

func (f fields) str(k string, dst *string) error {
	v, ok := f.v[k]
	if !ok {
		return nil
	}
	switch x := v.(type) {
	case string:
		*dst = x
	case nil:
		*dst = ""
	case int, float64, bool:
		*dst = fmt.Sprint(x)
	default:
		return f.errorf(k, "must be a string")
	}
	return nil
}

func (f fields) boolean(k string, dst *bool) error {
	v, ok := f.v[k]
	if !ok {
		return nil
	}
	b, ok := v.(bool)
	if !ok {
		return f.errorf(k, "must be true or false")
	}
	*dst = b
	return nil
}

func (f fields) integer(k string, dst *int) error {
	v, ok := f.v[k]
	if !ok {
		return nil
	}
	switch x := v.(type) {
	case int:
		*dst = x
	case float64:
		*dst = int(x)
	default:
		return f.errorf(k, "must be a number")
	}
	return nil
}

func (f fields) mapping(k string, dst *map[string]any) error {
	v, ok := f.v[k]
	if !ok {
		return nil
	}
	switch x := v.(type) {
	case map[string]any:
		*dst = plain(x).(map[string]any)
	case nil:
		*dst = map[string]any{}
	default:
		return f.errorf(k, "must be a mapping")
	}
	return nil
}

// plain replaces objects inside free-form values by their keys, so
// attributes stay JSON.
func plain(v any) any { return keyValue(v) }

func ref[T any](f fields, k string, dst **T) error {
	v, ok := f.v[k]
	if !ok {
		return nil
	}
	if v == nil {
		*dst = nil
		return nil
	}
	x, ok := v.(*T)
	if !ok {
		return f.errorf(k, "must name a %s (with !KeyOf or !Find), got %T", typeName[T](), v)
	}
	*dst = x
	return nil
}

func refs[T any](f fields, k string, dst *[]*T) error {
	v, ok := f.v[k]
	if !ok {
		return nil
	}
	l, ok := v.([]any)
	if !ok && v != nil {
		return f.errorf(k, "must be a list")
	}
	out := make([]*T, 0, len(l))
	for _, e := range l {
		if e == nil {
			continue // a !Find that found nothing
		}
		x, ok := e.(*T)
		if !ok {
			return f.errorf(k, "each item must name a %s (with !KeyOf or !Find), got %T", typeName[T](), e)
		}
		out = append(out, x)
	}
	*dst = out
	return nil
}

func typeName[T any]() string {
	var z *T
	switch any(z).(type) {
	case *user:
		return "user"
	case *group:
		return "group"
	case *role:
		return "role"
	case *flow:
		return "flow"
	case *provider:
		return "provider"
	case *application:
		return "application"
	case *certKeyPair:
		return "certificate key pair"
	case *serviceConn:
		return "service connection"
	}
	return fmt.Sprintf("%T", z)
}
