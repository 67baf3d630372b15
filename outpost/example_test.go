package outpost_test

import (
	"context"
	"fmt"

	"github.com/akoutpost/akoutpost/outpost"
	"github.com/akoutpost/akoutpost/outpost/outposttest"
)

// printer is a provider of its own: any type can serve an outpost type.
type printer struct{ stop context.CancelFunc }

func (p *printer) Apply(ctx context.Context, u outpost.Update) error {
	fmt.Printf("outpost %q (%s): %d providers, log level %s\n",
		u.Outpost.Name, u.Outpost.Type, len(u.Providers), u.Settings.LogLevel)
	p.stop() // one configuration is enough for the example
	return nil
}

func (p *printer) Serve(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// Run an outpost with a provider of one's own against the test core.
func Example() {
	core, err := outposttest.NewServer(outposttest.DemoBlueprint)
	if err != nil {
		panic(err)
	}
	defer core.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o, err := outpost.New(outpost.Config{
		CoreURL: core.URL(),
		Token:   core.Token("demo-proxy"),
		// The factory runs once the core has said the outpost's type.
		Providers: map[string]outpost.Factory{
			"proxy": func(context.Context, outpost.Deps) (outpost.Provider, error) {
				return &printer{stop: cancel}, nil
			},
		},
	})
	if err != nil {
		panic(err)
	}
	if err := o.Run(ctx); err != nil {
		panic(err)
	}
	// Output:
	// outpost "demo-proxy" (proxy): 2 providers, log level info
}
