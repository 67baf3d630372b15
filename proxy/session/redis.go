package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a [Store] in Redis (go-redis v9), so that replicas share
// sessions. Sessions expire with Redis TTLs; the subject and sid indexes are
// sets whose TTL follows their longest-lived member (EXPIRE NX/GT: Redis
// 7.0 or later).
type Redis struct {
	client redis.UniversalClient
	prefix string
	now    func() time.Time
}

var _ Store = (*Redis)(nil)

// NewRedis returns a store using client, with keys under prefix (empty means
// "akoutpost:proxy:"). now is the clock used for expiry; nil means time.Now.
// The caller owns client and closes it.
func NewRedis(client redis.UniversalClient, prefix string, now func() time.Time) (*Redis, error) {
	if client == nil {
		return nil, errors.New("redis session store: no client")
	}
	if prefix == "" {
		prefix = "akoutpost:proxy:"
	}
	if now == nil {
		now = time.Now
	}
	return &Redis{client: client, prefix: prefix, now: now}, nil
}

func (r *Redis) key(kind, v string) string { return r.prefix + kind + ":" + v }

// Load implements [Store].
func (r *Redis) Load(ctx context.Context, id string) (Session, error) {
	if !ValidID(id) {
		return Session{}, ErrNotFound
	}
	b, err := r.client.Get(ctx, r.key("s", id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Session{}, ErrNotFound
	}
	if err != nil {
		return Session{}, fmt.Errorf("redis session store: loading session: %w", err)
	}
	var rec fileRecord
	if err := json.Unmarshal(b, &rec); err != nil || rec.ID != id {
		return Session{}, ErrNotFound
	}
	if !r.now().Before(rec.Expires) {
		return Session{}, ErrNotFound
	}
	return Session(rec), nil
}

// Save implements [Store].
func (r *Redis) Save(ctx context.Context, s Session) error {
	if err := validate(s); err != nil {
		return err
	}
	ttl := s.Expires.Sub(r.now())
	if ttl <= 0 {
		// Already expired: make sure no older copy survives.
		_, err := r.Delete(ctx, Filter{ID: s.ID})
		return err
	}
	b, err := json.Marshal(fileRecord(s))
	if err != nil {
		return fmt.Errorf("redis session store: encoding session: %w", err)
	}
	_, err = r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, r.key("s", s.ID), b, ttl)
		for _, ix := range [][2]string{{"u", s.Subject}, {"sid", s.SID}} {
			if ix[1] == "" {
				continue
			}
			k := r.key(ix[0], ix[1])
			p.SAdd(ctx, k, s.ID)
			// NX then GT: a new set gets this TTL, an existing one only
			// grows, so the index outlives every member.
			p.ExpireNX(ctx, k, ttl)
			p.ExpireGT(ctx, k, ttl)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis session store: saving session: %w", err)
	}
	return nil
}

// Delete implements [Store].
func (r *Redis) Delete(ctx context.Context, f Filter) (int, error) {
	if err := f.check(); err != nil {
		return 0, err
	}
	var ids []string
	var index string
	switch {
	case f.ID != "":
		ids = []string{f.ID}
	case f.Subject != "":
		index = r.key("u", f.Subject)
	default:
		index = r.key("sid", f.SID)
	}
	if index != "" {
		var err error
		ids, err = r.client.SMembers(ctx, index).Result()
		if err != nil {
			return 0, fmt.Errorf("redis session store: reading index: %w", err)
		}
	}
	n := 0
	for _, id := range ids {
		b, err := r.client.Get(ctx, r.key("s", id)).Bytes()
		if errors.Is(err, redis.Nil) {
			if index != "" {
				r.client.SRem(ctx, index, id)
			}
			continue
		}
		if err != nil {
			return n, fmt.Errorf("redis session store: loading session: %w", err)
		}
		var rec fileRecord
		if json.Unmarshal(b, &rec) != nil || !f.matches(Session(rec)) {
			continue
		}
		_, err = r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Del(ctx, r.key("s", id))
			if rec.Subject != "" {
				p.SRem(ctx, r.key("u", rec.Subject), id)
			}
			if rec.SID != "" {
				p.SRem(ctx, r.key("sid", rec.SID), id)
			}
			return nil
		})
		if err != nil {
			return n, fmt.Errorf("redis session store: deleting session: %w", err)
		}
		n++
	}
	return n, nil
}
