package outpost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"time"
)

// refreshLoop owns every refresh: the first one (retried until it
// succeeds, in whole or in part), the periodic one, and those the core, a
// reconnect or Refresh asked for. Refreshes never overlap, so Apply is
// never called concurrently. The provider may serve once Apply first
// succeeded, in whole or in part (o.applied).
//
// The first refresh waits, at most firstDialWait, for the control channel's
// first dial: once the channel is up, a change in the core reaches the
// outpost as a trigger, so a first configuration fetched after that misses
// nothing. It then fetches the outpost again, since start-up fetched it
// before. Should the channel come up later, a refresh follows it.
func (o *Outpost) refreshLoop(ctx context.Context, prov Provider, first instance) {
	b := backoff{min: retryMin, max: retryMax}
	inst := &first
	t := time.NewTimer(firstDialWait)
	select {
	case <-ctx.Done():
		t.Stop()
		return
	case <-o.firstDial:
		inst = nil
	case <-t.C:
	}
	t.Stop()
	o.firstRefreshStarted.Store(true)
	for {
		err := o.refresh(ctx, prov, inst)
		inst = nil
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		delay := b.next()
		o.log.Warn("initial configuration failed, retrying", "error", err, "retry_in", delay.Round(time.Millisecond).String())
		// A trigger from the core or the operator cuts the wait short.
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-o.refreshNow:
		case <-o.refreshSoon:
		}
		t.Stop()
	}

	for {
		timer := time.NewTimer(o.interval())
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
			o.refreshLogged(ctx, prov, "interval")
		case <-o.refreshNow:
			o.refreshLogged(ctx, prov, "requested")
		case <-o.refreshSoon:
			if o.jitter > 0 && !sleep(ctx, rand.N(o.jitter)) {
				timer.Stop()
				return
			}
			o.refreshLogged(ctx, prov, "core")
		}
		timer.Stop()
	}
}

// firstDialWait bounds how long the first configuration waits for the
// control channel.
const firstDialWait = 2 * time.Second

func (o *Outpost) refreshLogged(ctx context.Context, prov Provider, reason string) {
	if err := o.refresh(ctx, prov, nil); err != nil && ctx.Err() == nil {
		o.log.Warn("refresh failed; keeping the last good configuration", "reason", reason, "error", err)
		return
	}
	o.log.Debug("refreshed configuration", "reason", reason)
}

func (o *Outpost) interval() time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.current == nil {
		return refreshInterval(0)
	}
	return o.current.interval
}

// refresh fetches the outpost (unless inst is given), its settings and its
// provider objects, and applies them. Any failure leaves the provider on
// its last good configuration.
func (o *Outpost) refresh(ctx context.Context, prov Provider, inst *instance) error {
	if inst == nil {
		pk := ""
		if cur, ok := o.Info(); ok {
			pk = cur.PK
		}
		fetched, err := o.fetchOutpost(ctx, pk)
		if err != nil {
			return err
		}
		inst = &fetched
	}
	if b := o.provider.Load(); b != nil && inst.Type != b.typ {
		return fmt.Errorf("%w: the outpost's type changed to %q; restart to serve it", ErrUnsupportedType, inst.Type)
	}
	settings, err := DecodeSettings(inst.Config)
	if err != nil {
		return fmt.Errorf("outpost %q: %w", inst.Name, err)
	}
	var objects []json.RawMessage
	err = o.api.List(ctx, "/outposts/"+url.PathEscape(inst.Type)+"/", nil, func(item json.RawMessage) error {
		objects = append(objects, item)
		return nil
	})
	if err != nil {
		return err
	}
	if len(objects) == 0 && inst.Managed != EmbeddedManaged {
		o.log.Warn("no providers assigned to this outpost; check the outpost's providers in authentik", "outpost", inst.Name)
	}

	// The embedded outpost's host owns the log level, as in authentik.
	if inst.Managed == "" {
		o.level.Set(settings.SlogLevel())
	}
	info := o.info(*inst, settings)
	err = prov.Apply(ctx, Update{Outpost: info, Settings: settings, Providers: objects})
	var partial *ApplyError
	if err != nil && !errors.As(err, &partial) {
		return fmt.Errorf("provider %s: applying configuration: %w", inst.Type, err)
	}
	// Applied, in whole or in part: the provider has something to answer
	// with (its applications, or 503s when every object was refused), so
	// it may serve.
	o.appliedOnce.Do(func() { close(o.applied) })
	if partial != nil {
		o.log.Warn("applied configuration; some provider objects were refused", "outpost", inst.Name,
			"applied", partial.Applied, "refused", partial.RefusedNames(), "error", partial)
	}
	if partial == nil || partial.Applied > 0 || len(objects) == 0 {
		o.readyOnce.Do(func() { close(o.ready) })
	}

	o.mu.Lock()
	prev := o.current
	o.current = &state{info: info, settings: settings, interval: inst.RefreshInterval}
	o.setInfoMetrics(prev, info)
	o.mu.Unlock()
	o.metrics.LastUpdate.WithLabelValues(info.Name, info.Type, o.instance, o.cfg.Version, o.cfg.BuildHash).
		SetToCurrentTime()
	if prev == nil {
		hash := o.cfg.BuildHash
		if hash == "" {
			hash = "tagged"
		}
		o.log.Info("starting authentik outpost", "outpost", info.Name, "version", o.cfg.Version, "hash", hash)
	}
	return nil
}

// info describes the outpost inst to its provider.
func (o *Outpost) info(inst instance, s Settings) Info {
	return Info{
		PK:           inst.PK,
		Name:         inst.Name,
		Type:         inst.Type,
		Managed:      inst.Managed,
		InstanceUUID: o.instance,
		Version:      o.cfg.Version,
		BrowserURL:   o.browserURL(s),
	}
}

// setInfoMetrics keeps one info series per instance: a renamed outpost
// replaces its series instead of leaving the old name behind. The
// connection gauge needs the name too, so it is (re)set here. Called with
// o.mu held, which orders it with setConnected.
func (o *Outpost) setInfoMetrics(prev *state, info Info) {
	if prev != nil && prev.info.Name != info.Name {
		o.metrics.Forget(o.instance)
	}
	if prev == nil || prev.info.Name != info.Name {
		o.setConnectionMetric(info, o.connected.Load())
	}
	o.metrics.Info.WithLabelValues(info.Name, info.Type, o.instance, o.cfg.Version, o.cfg.BuildHash).Set(1)
}

func (o *Outpost) setConnectionMetric(info Info, up bool) {
	v := 0.0
	if up {
		v = 1
	}
	o.metrics.Connection.WithLabelValues(info.Name, info.Type, o.instance).Set(v)
}

// browserURL is the core URL browsers are sent to (see
// Config.BrowserURL). A core reached at an internal address hands out
// OIDC URLs with that address, which only the outpost can use.
func (o *Outpost) browserURL(s Settings) string {
	switch {
	case o.cfg.BrowserURL != "":
		return o.cfg.BrowserURL
	case s.AuthentikHostBrowser != "":
		return s.AuthentikHostBrowser
	case o.api.internalAddress() && s.AuthentikHost != "":
		return s.AuthentikHost
	}
	if o.api.internalAddress() && o.warnedNoHost.CompareAndSwap(false, true) {
		o.log.Warn("the core is reached at an internal address and the outpost's authentik_host setting is empty: browsers are sent to the internal address",
			"core", o.api.BaseURL().Redacted())
	}
	u := o.api.BaseURL()
	u.RawQuery, u.Fragment = "", "" // query parameters are for the websocket
	return u.String()
}
