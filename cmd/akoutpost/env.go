package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/akoutpost/akoutpost/ldap"
)

// environment is the standalone outpost's configuration, read from
// authentik's variable names. Only this command reads the environment.
type environment struct {
	Host  string
	Token string
	// TokenFile is the path of AUTHENTIK_TOKEN=file:///path (without a
	// fallback): the outpost re-reads it when a rotated Secret replaces it.
	TokenFile   string
	Insecure    bool
	HostBrowser string
	LogLevel    string

	ListenHTTP    string
	ListenHTTPS   string
	ListenLDAP    string
	ListenLDAPS   string
	ListenRADIUS  string
	ListenMetrics string
	TrustedCIDRs  []string

	// SessionStore is AKOUTPOST_SESSION_STORE: where proxy sessions live.
	SessionStore string
	// TempDir is TMPDIR, else the system's temporary directory: where the
	// default session store lives.
	TempDir string

	// BindThrottle is the LDAP provider's failed-bind throttling, from
	// AKOUTPOST_LDAP_BIND_MAX_FAILURES, _WINDOW, _LOCKOUT, _DELAY and
	// _MAX_DELAY; unset fields take ldap.BindThrottle's defaults.
	BindThrottle ldap.BindThrottle
}

// defaultTrustedCIDRs are authentik's defaults for
// AUTHENTIK_LISTEN__TRUSTED_PROXY_CIDRS: loopback and private ranges.
var defaultTrustedCIDRs = []string{
	"127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fe80::/10", "::1/128",
}

// readEnvironment maps the process environment to an environment. When
// requireCore is false, AUTHENTIK_HOST and AUTHENTIK_TOKEN may be empty
// (healthcheck and version need neither).
func readEnvironment(getenv func(string) string, requireCore bool) (environment, error) {
	get := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	env := environment{
		Host:          get("AUTHENTIK_HOST", ""),
		HostBrowser:   get("AUTHENTIK_HOST_BROWSER", ""),
		LogLevel:      get("AUTHENTIK_LOG_LEVEL", "info"),
		ListenHTTP:    get("AUTHENTIK_LISTEN__HTTP", "0.0.0.0:9000"),
		ListenHTTPS:   get("AUTHENTIK_LISTEN__HTTPS", "0.0.0.0:9443"),
		ListenLDAP:    get("AUTHENTIK_LISTEN__LDAP", "0.0.0.0:3389"),
		ListenLDAPS:   get("AUTHENTIK_LISTEN__LDAPS", "0.0.0.0:6636"),
		ListenRADIUS:  get("AUTHENTIK_LISTEN__RADIUS", "0.0.0.0:1812"),
		ListenMetrics: get("AUTHENTIK_LISTEN__METRICS", "0.0.0.0:9300"),
		TrustedCIDRs:  defaultTrustedCIDRs,
		SessionStore:  get("AKOUTPOST_SESSION_STORE", ""),
		TempDir:       get("TMPDIR", os.TempDir()),
	}
	token, err := resolveSecret(getenv("AUTHENTIK_TOKEN"), getenv)
	if err != nil {
		return env, fmt.Errorf("AUTHENTIK_TOKEN: %w", err)
	}
	env.Token = token
	if raw := getenv("AUTHENTIK_TOKEN"); strings.HasPrefix(raw, "file://") && !strings.Contains(raw, "?") {
		env.TokenFile = strings.TrimPrefix(raw, "file://")
	}
	if v := getenv("AUTHENTIK_INSECURE"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return env, fmt.Errorf("AUTHENTIK_INSECURE: %q is not a boolean", v)
		}
		env.Insecure = b
	}
	if v := getenv("AUTHENTIK_LISTEN__TRUSTED_PROXY_CIDRS"); v != "" {
		env.TrustedCIDRs = nil
		for _, c := range strings.Split(v, ",") {
			if c = strings.TrimSpace(c); c == "" {
				continue
			}
			if _, _, err := net.ParseCIDR(c); err != nil {
				return env, fmt.Errorf("AUTHENTIK_LISTEN__TRUSTED_PROXY_CIDRS: %q is not a CIDR", c)
			}
			env.TrustedCIDRs = append(env.TrustedCIDRs, c)
		}
	}
	if err := readBindThrottle(getenv, &env.BindThrottle); err != nil {
		return env, err
	}
	for name, addr := range map[string]string{
		"AUTHENTIK_LISTEN__HTTP": env.ListenHTTP, "AUTHENTIK_LISTEN__HTTPS": env.ListenHTTPS,
		"AUTHENTIK_LISTEN__LDAP": env.ListenLDAP, "AUTHENTIK_LISTEN__LDAPS": env.ListenLDAPS,
		"AUTHENTIK_LISTEN__METRICS": env.ListenMetrics, "AUTHENTIK_LISTEN__RADIUS": env.ListenRADIUS,
	} {
		// authentik fails obscurely on "9300" (issue #9508); say what is wrong.
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return env, fmt.Errorf("%s: %q is not host:port (for example 0.0.0.0:9300)", name, addr)
		}
	}
	if !requireCore {
		return env, nil
	}
	if env.Host == "" {
		return env, errors.New("environment variable `AUTHENTIK_HOST` not set")
	}
	if env.Token == "" {
		return env, errors.New("environment variable `AUTHENTIK_TOKEN` not set")
	}
	u, err := url.Parse(env.Host)
	if err != nil || ((u.Scheme != "http" && u.Scheme != "https") || u.Host == "") && !(u.Scheme == "unix" && u.Path != "") {
		return env, fmt.Errorf("AUTHENTIK_HOST: %q is not an http(s) URL or unix:///path/to.sock", env.Host)
	}
	return env, nil
}

// resolveSecret resolves authentik's URI forms for secret values:
// "file:///path" reads the file (surrounding whitespace trimmed) and
// "env://NAME" reads another variable; "?fallback" is used when the source
// is missing. Errors never contain the value.
func resolveSecret(v string, getenv func(string) string) (string, error) {
	switch {
	case strings.HasPrefix(v, "file://"):
		path, fallback, hasFallback := strings.Cut(strings.TrimPrefix(v, "file://"), "?")
		b, err := os.ReadFile(path)
		if err != nil {
			if hasFallback {
				return fallback, nil
			}
			return "", fmt.Errorf("reading %s: %w", path, errors.Unwrap(err))
		}
		return strings.TrimSpace(string(b)), nil
	case strings.HasPrefix(v, "env://"):
		name, fallback, hasFallback := strings.Cut(strings.TrimPrefix(v, "env://"), "?")
		if s := getenv(name); s != "" {
			return s, nil
		}
		if hasFallback {
			return fallback, nil
		}
		return "", fmt.Errorf("variable %s is not set", name)
	}
	return v, nil
}

// readBindThrottle reads AKOUTPOST_LDAP_BIND_*: a count and durations in
// Go's notation (30s, 5m); a negative count or delay turns that part off.
func readBindThrottle(getenv func(string) string, bt *ldap.BindThrottle) error {
	if v := getenv("AKOUTPOST_LDAP_BIND_MAX_FAILURES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("AKOUTPOST_LDAP_BIND_MAX_FAILURES: %q is not a whole number", v)
		}
		bt.MaxFailures = n
	}
	for _, d := range []struct {
		name     string
		to       *time.Duration
		negative bool
	}{
		{"AKOUTPOST_LDAP_BIND_WINDOW", &bt.Window, false},
		{"AKOUTPOST_LDAP_BIND_LOCKOUT", &bt.Lockout, false},
		{"AKOUTPOST_LDAP_BIND_DELAY", &bt.Delay, true},
		{"AKOUTPOST_LDAP_BIND_MAX_DELAY", &bt.MaxDelay, false},
	} {
		v := getenv(d.name)
		if v == "" {
			continue
		}
		t, err := time.ParseDuration(v)
		if err != nil || (t < 0 && !d.negative) {
			return fmt.Errorf("%s: %q is not a duration such as 30s or 5m", d.name, v)
		}
		*d.to = t
	}
	return nil
}
