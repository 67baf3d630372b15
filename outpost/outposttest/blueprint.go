package outposttest

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// A blueprint is authentik's YAML description of objects. The test core
// reads the subset listed in the package documentation; anything else is
// an error naming the entry, so a blueprint never half-applies silently.

type bpFile struct {
	entries []bpEntry
}

type bpEntry struct {
	index       int
	line        int
	model       string
	id          string
	state       string
	identifiers map[string]any
	attrs       map[string]any
	permissions []any
}

func (e *bpEntry) String() string {
	if e.index < 0 {
		return "live edit of " + e.model + " " + e.id
	}
	desc := fmt.Sprintf("entry %d (line %d, model %s", e.index, e.line, e.model)
	if e.id != "" {
		desc += ", id " + e.id
	}
	return desc + ")"
}

// tagged is a value written with one of the supported custom tags; it is
// resolved against the model when its entry is applied, because !KeyOf and
// !Find name objects earlier entries created.
type tagged struct {
	tag  string
	args []any
	line int
}

var supportedTags = map[string]bool{"!KeyOf": true, "!Find": true, "!Env": true}

// parseBlueprint reads the YAML and checks its structure.
func parseBlueprint(data []byte) (*bpFile, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("blueprint: parsing YAML: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("blueprint: the document must be a mapping with version and entries")
	}
	root := doc.Content[0]
	bp := &bpFile{}
	b := newBudget()
	version := false
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, val := root.Content[i].Value, root.Content[i+1]
		switch key {
		case "version":
			if val.Value != "1" {
				return nil, fmt.Errorf("blueprint: line %d: version %q is not supported (only 1)", val.Line, val.Value)
			}
			version = true
		case "metadata", "context":
			// Names and labels; context only feeds !Context, which is not
			// supported, so it has no effect.
			if _, err := decodeBudget(val, b); err != nil {
				return nil, fmt.Errorf("blueprint: %s: %w", key, err)
			}
		case "entries":
			if val.Kind != yaml.SequenceNode {
				return nil, fmt.Errorf("blueprint: line %d: entries must be a list", val.Line)
			}
			for n, en := range val.Content {
				e, err := parseEntry(n, en, b)
				if err != nil {
					return nil, err
				}
				bp.entries = append(bp.entries, e)
			}
		default:
			return nil, fmt.Errorf("blueprint: line %d: unknown top-level key %q", root.Content[i].Line, key)
		}
	}
	if !version {
		return nil, errors.New("blueprint: version: 1 is missing")
	}
	return bp, nil
}

func parseEntry(index int, n *yaml.Node, b *budget) (bpEntry, error) {
	e := bpEntry{index: index, line: n.Line}
	if n.Kind != yaml.MappingNode {
		return e, fmt.Errorf("blueprint: entry %d (line %d): must be a mapping", index, n.Line)
	}
	// The model first, so every later error can name it.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "model" {
			e.model = n.Content[i+1].Value
		}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i].Value, n.Content[i+1]
		v, err := decodeBudget(val, b)
		if err != nil {
			return e, fmt.Errorf("blueprint: %s: %s: %w", &e, key, err)
		}
		switch key {
		case "model":
		case "id":
			e.id, _ = v.(string)
		case "state":
			s, _ := v.(string)
			switch s {
			case "present", "created", "must_created", "absent":
				e.state = s
			default:
				return e, fmt.Errorf("blueprint: %s: unknown state %q", &e, s)
			}
		case "identifiers", "attrs":
			m, ok := v.(map[string]any)
			if !ok && v != nil {
				return e, fmt.Errorf("blueprint: %s: %s must be a mapping", &e, key)
			}
			if key == "identifiers" {
				e.identifiers = m
			} else {
				e.attrs = m
			}
		case "permissions":
			l, ok := v.([]any)
			if !ok {
				return e, fmt.Errorf("blueprint: %s: permissions must be a list", &e)
			}
			e.permissions = l
		default:
			return e, fmt.Errorf("blueprint: %s: unknown key %q", &e, key)
		}
	}
	if e.model == "" {
		return e, fmt.Errorf("blueprint: %s: model is missing", &e)
	}
	if _, ok := modelAppliers[e.model]; !ok {
		return e, fmt.Errorf("blueprint: %s: unknown or unsupported model %q", &e, e.model)
	}
	return e, nil
}

// maxNodes bounds the values a blueprint may expand to, so aliases of
// aliases (a "billion laughs" document) cannot exhaust memory.
const maxNodes = 1 << 20

// maxAliasNodes bounds the values reached through aliases. maxNodes alone
// let a few hundred bytes of nested aliases expand to a million values,
// which took seconds to decode, copy and compare (and far longer under
// the fuzzer); blueprints written by people or generators repeat a value
// with an alias a few times, not thousands.
const maxAliasNodes = 1 << 14

// budget counts the values a document expands to.
type budget struct {
	nodes   int // left for the whole document
	aliased int // left for values reached through an alias
}

func newBudget() *budget { return &budget{nodes: maxNodes, aliased: maxAliasNodes} }

// decodeBudget turns a YAML node into plain Go values, keeping custom tags
// as *tagged, and counts every value against the document's budget.
func decodeBudget(n *yaml.Node, b *budget) (any, error) {
	return decodeNode(n, b, false)
}

func decodeNode(n *yaml.Node, b *budget, viaAlias bool) (any, error) {
	b.nodes--
	if b.nodes < 0 {
		return nil, fmt.Errorf("the document expands to too many values (more than %d)", maxNodes)
	}
	if viaAlias {
		b.aliased--
		if b.aliased < 0 {
			return nil, fmt.Errorf("line %d: aliases expand to too many values (more than %d)", n.Line, maxAliasNodes)
		}
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return nil, fmt.Errorf("line %d: alias to nothing", n.Line)
		}
		return decodeNode(n.Alias, b, true)
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		if !supportedTags[n.Tag] {
			return nil, fmt.Errorf("line %d: unknown or unsupported tag %s", n.Line, n.Tag)
		}
		t := &tagged{tag: n.Tag, line: n.Line}
		switch n.Kind {
		case yaml.ScalarNode:
			t.args = []any{n.Value}
		case yaml.SequenceNode:
			for _, c := range n.Content {
				v, err := decodeNode(c, b, viaAlias)
				if err != nil {
					return nil, err
				}
				t.args = append(t.args, v)
			}
		default:
			return nil, fmt.Errorf("line %d: %s takes a value or a list", n.Line, n.Tag)
		}
		return t, nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: mapping keys must be plain values", n.Content[i].Line)
			}
			v, err := decodeNode(n.Content[i+1], b, viaAlias)
			if err != nil {
				return nil, err
			}
			m[n.Content[i].Value] = v
		}
		return m, nil
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := decodeNode(c, b, viaAlias)
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
		return l, nil
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		if i, ok := v.(int); ok {
			return i, nil
		}
		return v, nil
	}
	return nil, fmt.Errorf("line %d: unexpected YAML node", n.Line)
}

// loader applies entries to a model.
type loader struct {
	m         *model
	ids       map[string]any
	lookupEnv func(string) (string, bool)
	dryRun    bool // skip certificate generation
}

func (l *loader) apply(bp *bpFile) error {
	for i := range bp.entries {
		if err := l.applyEntry(&bp.entries[i]); err != nil {
			return err
		}
	}
	return l.m.finish(!l.dryRun)
}

func (l *loader) applyEntry(e *bpEntry) error {
	ident, err := l.resolve(e, e.identifiers)
	if err != nil {
		return err
	}
	attrs, err := l.resolve(e, e.attrs)
	if err != nil {
		return err
	}
	identMap, _ := ident.(map[string]any)
	attrMap, _ := attrs.(map[string]any)
	keyJSON, err := json.Marshal(keyForm(identMap))
	if err != nil {
		return fmt.Errorf("blueprint: %s: identifiers: %w", e, err)
	}
	key := e.model + "\x00" + string(keyJSON)
	existing := l.m.byKey[key]
	if e.state == "absent" {
		if existing != nil {
			return fmt.Errorf("blueprint: %s: state absent for an existing object is not supported", e)
		}
		return nil
	}
	if e.state == "must_created" && existing != nil {
		return fmt.Errorf("blueprint: %s: state must_created but the object exists", e)
	}
	if e.state == "created" && existing != nil {
		l.remember(e, existing)
		return nil
	}
	f := fields{entry: e, v: map[string]any{}}
	for k, v := range identMap {
		f.v[k] = v
	}
	for k, v := range attrMap {
		f.v[k] = v
	}
	ap := modelAppliers[e.model]
	for k := range f.v {
		if !ap.allowed[k] {
			return fmt.Errorf("blueprint: %s: unknown attribute %q for %s", e, k, e.model)
		}
	}
	obj, err := ap.apply(l.m, existing, f, string(keyJSON))
	if err != nil {
		return err
	}
	l.m.byKey[key] = obj
	l.remember(e, obj)
	return l.permissions(e, obj)
}

func (l *loader) remember(e *bpEntry, obj any) {
	if e.id != "" {
		l.ids[e.id] = obj
	}
}

func (l *loader) permissions(e *bpEntry, obj any) error {
	for _, p := range e.permissions {
		v, err := l.resolve(e, p)
		if err != nil {
			return err
		}
		pm, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("blueprint: %s: each permission must be a mapping", e)
		}
		g := grant{object: obj}
		for k, val := range pm {
			switch k {
			case "permission":
				s, ok := val.(string)
				if !ok || s == "" {
					return fmt.Errorf("blueprint: %s: permission must be a string", e)
				}
				g.permission = s
			case "user":
				u, ok := val.(*user)
				if !ok {
					return fmt.Errorf("blueprint: %s: permission user must name a user (!KeyOf or !Find)", e)
				}
				g.user = u
			case "role":
				r, ok := val.(*role)
				if !ok {
					return fmt.Errorf("blueprint: %s: permission role must name a role (!KeyOf or !Find)", e)
				}
				g.role = r
			default:
				return fmt.Errorf("blueprint: %s: unknown permission attribute %q", e, k)
			}
		}
		if g.permission == "" || (g.user == nil) == (g.role == nil) {
			return fmt.Errorf("blueprint: %s: a permission needs permission and exactly one of user or role", e)
		}
		l.m.grants = append(l.m.grants, g)
	}
	return nil
}

// resolve replaces tagged values by what they name.
func (l *loader) resolve(e *bpEntry, v any) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			r, err := l.resolve(e, val)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			r, err := l.resolve(e, val)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	case *tagged:
		return l.resolveTag(e, x)
	}
	return v, nil
}

func (l *loader) resolveTag(e *bpEntry, t *tagged) (any, error) {
	args := make([]any, len(t.args))
	for i, a := range t.args {
		r, err := l.resolve(e, a)
		if err != nil {
			return nil, err
		}
		args[i] = r
	}
	fail := func(format string, a ...any) error {
		return fmt.Errorf("blueprint: %s: line %d: %s: %s", e, t.line, t.tag, fmt.Sprintf(format, a...))
	}
	switch t.tag {
	case "!KeyOf":
		id, _ := args[0].(string)
		obj, ok := l.ids[id]
		if len(args) != 1 || !ok {
			return nil, fail("no earlier entry has id %q", id)
		}
		return obj, nil
	case "!Env":
		var name, def string
		switch {
		case len(args) == 1:
			name, _ = args[0].(string)
		case len(args) == 2:
			name, _ = args[0].(string)
			def = fmt.Sprint(args[1])
		default:
			return nil, fail("takes NAME or [NAME, DEFAULT]")
		}
		if v, ok := l.lookupEnv(name); ok {
			return v, nil
		}
		return def, nil
	case "!Find":
		if len(args) < 1 {
			return nil, fail("takes [MODEL, [FIELD, VALUE], ...]")
		}
		modelName, _ := args[0].(string)
		var conds [][2]any
		for _, a := range args[1:] {
			pair, ok := a.([]any)
			if !ok || len(pair) != 2 {
				return nil, fail("each query must be [FIELD, VALUE]")
			}
			conds = append(conds, [2]any{pair[0], pair[1]})
		}
		objs, ok := l.m.objectsOf(modelName)
		if !ok {
			return nil, fail("unknown or unsupported model %q", modelName)
		}
		for _, o := range objs {
			match := true
			for _, c := range conds {
				field, _ := c[0].(string)
				got, ok := findField(o, field)
				if !ok {
					return nil, fail("model %s has no searchable field %q", modelName, field)
				}
				if fmt.Sprint(got) != fmt.Sprint(keyValue(c[1])) {
					match = false
				}
			}
			if match {
				return o, nil
			}
		}
		// authentik resolves a failed !Find to null.
		return nil, nil
	}
	return nil, fail("unsupported tag")
}

// keyForm makes identifiers JSON-encodable: objects become their keys.
func keyForm(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = keyValue(v)
	}
	return out
}

func keyValue(v any) any {
	switch x := v.(type) {
	case *user:
		return x.pk
	case *group:
		return x.uuid
	case *role:
		return x.uuid
	case *flow:
		return x.uuid
	case *application:
		return x.uuid
	case *provider:
		return x.pk
	case *outpostObj:
		return x.uuid
	case *certKeyPair:
		return x.uuid
	case interface{ key() any }:
		return x.key()
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = keyValue(e)
		}
		return out
	case map[string]any:
		return keyForm(x)
	}
	return v
}
