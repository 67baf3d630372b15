package flow

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/akoutpost/akoutpost/metrics"
	"github.com/akoutpost/akoutpost/outpost"
)

// ForOutpost returns an executor that talks to the core as the outpost
// whose API client is api (its URL, transport and User-Agent), for a
// provider's binds or authentications. The outpost token is asked of api
// on every request, so a rotated token file is followed; token, when not
// empty, is sent instead. Flow timings are registered on reg under
// authentik's names.
func ForOutpost(api *outpost.Client, token string, log *slog.Logger, reg prometheus.Registerer) (*Executor, error) {
	fm, err := metrics.NewFlow(reg)
	if err != nil {
		return nil, err
	}
	tokenFunc := api.Token
	if token != "" {
		tokenFunc = func() string { return token }
	}
	return New(Config{
		BaseURL: api.BaseURL(), Transport: api.Transport(), TokenFunc: tokenFunc,
		UserAgent: api.UserAgent(), Logger: log, Metrics: fm,
	})
}
