package outpost_test

import (
	"fmt"

	"github.com/akoutpost/akoutpost/outpost"
)

// An outpost's config object, as the core sends it, decoded over the
// defaults; keys a newer core adds are ignored.
func ExampleDecodeSettings() {
	s, err := outpost.DecodeSettings(map[string]any{
		"log_level":              "debug",
		"object_naming_template": "ak-%(name)s",
		"a_key_from_the_future":  true,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.LogLevel, s.SlogLevel(), s.ObjectNamingTemplate, s.DockerMapPorts)
	// Output:
	// debug DEBUG ak-%(name)s true
}
