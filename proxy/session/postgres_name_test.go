package session

import (
	"strings"
	"testing"
)

func TestValidTableName(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"", false},
		{"akoutpost_proxy_session", true},
		{"_t1", true},
		{"1t", false},
		{"T", false},
		{"a-b", false},
		{"a;drop", false},
		{"a" + strings.Repeat("b", 62), true},
		{"a" + strings.Repeat("b", 63), false},
	}
	for _, tt := range tests {
		if got := validTableName(tt.name); got != tt.want {
			t.Errorf("validTableName(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}
