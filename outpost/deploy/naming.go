package deploy

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// maxNameLength is the longest Kubernetes object name authentik makes: a DNS
// label (RFC 1123), which Services need.
const maxNameLength = 63

// ObjectName is the name of the Kubernetes objects of the outpost, as
// authentik derives it: the naming template filled in and lower-cased, then
// slugified, every character outside [a-z0-9-] made a dash, dash runs
// collapsed and the result cut to 63 characters; "outpost-<uuid hex>" when
// nothing is left. Unlike authentik, dashes left at either end by the cut are
// trimmed too, so the name is always a valid DNS label.
func ObjectName(in Input) (string, error) {
	p, err := in.prepare()
	if err != nil {
		return "", err
	}
	return p.objectName()
}

// ContainerName is the Docker container name of the outpost, as authentik
// derives it: the naming template filled in and lower-cased. It is an error
// when the result is not a valid container name.
func ContainerName(in Input) (string, error) {
	p, err := in.prepare()
	if err != nil {
		return "", err
	}
	return p.containerName()
}

// Image is the container image the outpost runs: the setting container_image
// or, when it is empty, the image base (DefaultImageBase unless
// Input.ImageBase is set) filled with the outpost type and Input.Version.
func Image(in Input) (string, error) {
	return image(in)
}

var (
	nonNameChars = regexp.MustCompile(`[^a-z0-9-]`)
	dashRuns     = regexp.MustCompile(`-{2,}`)
	// Docker's rule for container names.
	containerNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)
)

func (p *prepared) templateName() (string, error) {
	name, err := pyFormat(p.s.ObjectNamingTemplate, map[string]string{"name": p.slug, "uuid": p.uuidHex})
	if err != nil {
		return "", fmt.Errorf("deploy: object_naming_template: %w", err)
	}
	return strings.ToLower(name), nil
}

func (p *prepared) objectName() (string, error) {
	name, err := p.templateName()
	if err != nil {
		return "", err
	}
	name = slugify(name)
	name = nonNameChars.ReplaceAllString(name, "-")
	name = dashRuns.ReplaceAllString(name, "-")
	if len(name) > maxNameLength {
		name = name[:maxNameLength]
	}
	name = strings.Trim(name, "-")
	if name == "" {
		name = "outpost-" + p.uuidHex
	}
	return name, nil
}

func (p *prepared) containerName() (string, error) {
	name, err := p.templateName()
	if err != nil {
		return "", err
	}
	if !containerNameRE.MatchString(name) {
		return "", fmt.Errorf("deploy: container name %q from object_naming_template is not a valid Docker container name", name)
	}
	return name, nil
}

// slugify mirrors Django's slugify, which authentik applies to outpost names:
// accents are decomposed and non-ASCII dropped, characters other than
// letters, digits, underscores, spaces and dashes removed, the rest
// lower-cased, runs of spaces and dashes made one dash, and dashes and
// underscores trimmed from both ends.
func slugify(s string) string {
	var b strings.Builder
	for _, r := range norm.NFKD.String(s) {
		if r > unicode.MaxASCII {
			continue
		}
		r = unicode.ToLower(r)
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_', r == '-':
			b.WriteRune(r)
		case unicode.IsSpace(r):
			b.WriteRune(' ')
		}
	}
	var out strings.Builder
	sep := false
	for _, r := range b.String() {
		if r == ' ' || r == '-' {
			sep = true
			continue
		}
		if sep {
			out.WriteByte('-')
			sep = false
		}
		out.WriteRune(r)
	}
	if sep {
		out.WriteByte('-')
	}
	return strings.Trim(out.String(), "-_")
}

// labelValue makes s a valid Kubernetes label value: at most 63 characters,
// beginning and ending with a letter or digit. authentik uses slugs and
// versions as label values unchecked, and a long outpost name then makes the
// API server refuse every object; here the value is cut instead.
func labelValue(s string) string {
	if len(s) > maxNameLength {
		s = s[:maxNameLength]
	}
	return strings.TrimFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	})
}

// pyFormat fills a Python %-format template with named string values, the
// syntax of authentik's object_naming_template and container_image_base:
// %(key)s with optional "-" flag, width and precision, and %% for a percent
// sign. Anything else is an error rather than a silently wrong name.
func pyFormat(tmpl string, values map[string]string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(tmpl); i++ {
		c := tmpl[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		i++
		if i >= len(tmpl) {
			return "", fmt.Errorf("template %q ends with a lone %%", tmpl)
		}
		if tmpl[i] == '%' {
			b.WriteByte('%')
			continue
		}
		if tmpl[i] != '(' {
			return "", fmt.Errorf("template %q: only %%(key)s placeholders are supported", tmpl)
		}
		end := strings.IndexByte(tmpl[i:], ')')
		if end < 0 {
			return "", fmt.Errorf("template %q: unclosed %%(", tmpl)
		}
		key := tmpl[i+1 : i+end]
		i += end + 1
		val, ok := values[key]
		if !ok {
			return "", fmt.Errorf("template %q: unknown placeholder %%(%s)", tmpl, key)
		}
		left := false
		if i < len(tmpl) && tmpl[i] == '-' {
			left = true
			i++
		}
		width, i2 := readNumber(tmpl, i)
		i = i2
		prec := -1
		if i < len(tmpl) && tmpl[i] == '.' {
			prec, i = readNumber(tmpl, i+1)
		}
		if i >= len(tmpl) || tmpl[i] != 's' {
			return "", fmt.Errorf("template %q: placeholder %%(%s) must end in s", tmpl, key)
		}
		if prec >= 0 && prec < len(val) {
			val = val[:prec] // values are ASCII: slugs, hex and versions
		}
		if pad := width - len(val); pad > 0 {
			if left {
				val += strings.Repeat(" ", pad)
			} else {
				val = strings.Repeat(" ", pad) + val
			}
		}
		b.WriteString(val)
	}
	return b.String(), nil
}

// readNumber reads decimal digits at s[i:]; it returns 0 when there are none.
func readNumber(s string, i int) (int, int) {
	j := i
	for j < len(s) && s[j] >= '0' && s[j] <= '9' {
		j++
	}
	if j == i {
		return 0, i
	}
	n, err := strconv.Atoi(s[i:j])
	if err != nil || n > 1000 {
		n = 1000 // a silly width; keep the output bounded
	}
	return n, j
}
