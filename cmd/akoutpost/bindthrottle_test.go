package main

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/akoutpost/akoutpost/ldap"
	"github.com/akoutpost/akoutpost/outpost"
)

func TestReadEnvironmentBindThrottle(t *testing.T) {
	core := map[string]string{"AUTHENTIK_HOST": "https://h/", "AUTHENTIK_TOKEN": "t"}
	tests := []struct {
		name    string
		vars    map[string]string
		want    ldap.BindThrottle
		wantErr string
	}{
		{name: "unset: the library's defaults", vars: map[string]string{}},
		{name: "all set", vars: map[string]string{
			"AKOUTPOST_LDAP_BIND_MAX_FAILURES": "10", "AKOUTPOST_LDAP_BIND_WINDOW": "15m",
			"AKOUTPOST_LDAP_BIND_LOCKOUT": "1h", "AKOUTPOST_LDAP_BIND_DELAY": "250ms", "AKOUTPOST_LDAP_BIND_MAX_DELAY": "2s",
		}, want: ldap.BindThrottle{MaxFailures: 10, Window: 15 * time.Minute, Lockout: time.Hour,
			Delay: 250 * time.Millisecond, MaxDelay: 2 * time.Second}},
		{name: "turned off", vars: map[string]string{"AKOUTPOST_LDAP_BIND_MAX_FAILURES": "-1", "AKOUTPOST_LDAP_BIND_DELAY": "-1s"},
			want: ldap.BindThrottle{MaxFailures: -1, Delay: -time.Second}},
		{name: "not a number", vars: map[string]string{"AKOUTPOST_LDAP_BIND_MAX_FAILURES": "five"}, wantErr: "AKOUTPOST_LDAP_BIND_MAX_FAILURES"},
		{name: "not a duration", vars: map[string]string{"AKOUTPOST_LDAP_BIND_LOCKOUT": "300"}, wantErr: "AKOUTPOST_LDAP_BIND_LOCKOUT"},
		{name: "negative window", vars: map[string]string{"AKOUTPOST_LDAP_BIND_WINDOW": "-5m"}, wantErr: "AKOUTPOST_LDAP_BIND_WINDOW"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]string{}
			for k, v := range core {
				vars[k] = v
			}
			for k, v := range tt.vars {
				vars[k] = v
			}
			env, err := readEnvironment(envOf(vars), true)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if env.BindThrottle != tt.want {
				t.Errorf("BindThrottle = %+v, want %+v", env.BindThrottle, tt.want)
			}
			api, err := outpost.NewClient(outpost.ClientConfig{URL: &url.URL{Scheme: "http", Host: "127.0.0.1:1"}, Token: "t"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ldap.New(outpost.Deps{API: api}, ldap.Config{BindThrottle: env.BindThrottle}); err != nil {
				t.Errorf("ldap.New refuses what the environment gave: %v", err)
			}
		})
	}
}
