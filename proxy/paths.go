package proxy

import (
	"net/url"
	"strings"
)

// Paths are passed to the upstream exactly as the client sent them, so the
// outpost cannot know which resource an upstream will resolve a path to:
// nginx and Apache decode escapes and remove dot segments, Tomcat and Jetty
// drop ";parameters" from each segment first, Go's file server cleans the
// decoded path, IIS treats a backslash as a slash, and a chain of proxies
// may decode twice. skip_path_regex is therefore only trusted for a path
// that every one of those readings resolves to the same place.

// maxDecodeRounds bounds how often an escape is decoded when looking for
// hidden separators and dot segments (%252e%252e is ".." to an upstream
// behind a proxy that decodes once).
const maxDecodeRounds = 3

// pathForms judges an escaped request path for the allowlist. It reports
// whether the path is canonical: it starts with "/", and no reading of it
// has a dot segment ("." or "..", also as "%2e", "..;x" or after a second
// decoding), an encoded or backslash separator ("%2F", "%5C", "\"), or a
// control character. For a canonical path, forms are the paths upstreams
// may see: decoded, with ";parameters" dropped, with repeated slashes
// merged, and decoded twice. A path is allowlisted only when each form
// matches, so a pattern cannot be satisfied by text an upstream drops.
func pathForms(escaped string) (forms []string, canonical bool) {
	if !strings.HasPrefix(escaped, "/") {
		return nil, false
	}
	segments := strings.Split(escaped[1:], "/")
	decoded := make([]string, len(segments))
	full := make([]string, len(segments))
	for i, seg := range segments {
		once, err := url.PathUnescape(seg)
		if err != nil {
			return nil, false
		}
		all := once
		for range maxDecodeRounds - 1 {
			next, err := url.PathUnescape(all)
			if err != nil || next == all {
				break
			}
			all = next
		}
		for _, s := range []string{once, all} {
			if !plainSegment(s) {
				return nil, false
			}
		}
		decoded[i], full[i] = once, all
	}
	plain := "/" + strings.Join(decoded, "/")
	forms = appendForm(forms, plain)
	forms = appendForm(forms, "/"+strings.Join(full, "/"))
	stripped := make([]string, len(decoded))
	for i, s := range decoded {
		stripped[i], _, _ = strings.Cut(s, ";")
	}
	forms = appendForm(forms, "/"+strings.Join(stripped, "/"))
	for _, f := range forms {
		forms = appendForm(forms, mergeSlashes(f))
	}
	return forms, true
}

// plainSegment reports whether a decoded segment names an ordinary child:
// not a separator in disguise, not a control character, and not a dot
// segment in any form an upstream might trim ("..;x", ". .", "...").
func plainSegment(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '/' || c == '\\' || c < 0x20 || c == 0x7f {
			return false
		}
	}
	name, _, _ := strings.Cut(s, ";")
	name = strings.Trim(name, " ")
	return name == "" || strings.Trim(name, ". ") != ""
}

func appendForm(forms []string, f string) []string {
	for _, have := range forms {
		if have == f {
			return forms
		}
	}
	return append(forms, f)
}

func mergeSlashes(p string) string {
	for strings.Contains(p, "//") {
		p = strings.ReplaceAll(p, "//", "/")
	}
	return p
}

// canonicalPath reports whether the escaped path is canonical in the sense
// of pathForms.
func canonicalPath(escaped string) bool {
	_, ok := pathForms(escaped)
	return ok
}
