package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// AuthentikTable is the table authentik's own proxy sessions live in.
const AuthentikTable = "authentik_providers_proxy_proxysession"

// AuthentikPostgres is a [Store] in the table authentik already has for
// its embedded outpost's sessions (authentik_providers_proxy_proxysession:
// uuid, session_key, user_id, session_data, expires, expiring), so an
// outpost next to authentik needs no table of its own and authentik's
// expired-row cleanup covers it. Rows keep authentik's shape: session_key
// is the session ID, expires and expiring are set, user_id is the subject
// when it is a UUID; the payload lives under session_data.akoutpost.
//
// Run [AuthentikPostgres.EnsureIndexes] once: it adds expression indexes on
// the subject and sid inside session_data, without which ending a user's
// sessions would scan the table.
type AuthentikPostgres struct {
	pool *pgxpool.Pool
	now  func() time.Time
}

var _ Store = (*AuthentikPostgres)(nil)

// NewAuthentikPostgres returns a store on authentik's table through pool.
// now is the clock for expiry; nil means time.Now. No I/O happens here.
func NewAuthentikPostgres(pool *pgxpool.Pool, now func() time.Time) (*AuthentikPostgres, error) {
	if pool == nil {
		return nil, errors.New("authentik postgres session store: no pool")
	}
	if now == nil {
		now = time.Now
	}
	return &AuthentikPostgres{pool: pool, now: now}, nil
}

// EnsureIndexes adds the subject and sid indexes when missing. authentik's
// migrations leave indexes they do not know alone.
func (p *AuthentikPostgres) EnsureIndexes(ctx context.Context) error {
	for _, s := range []string{
		`CREATE INDEX IF NOT EXISTS akoutpost_proxysession_subject ON ` + AuthentikTable +
			` ((session_data->'akoutpost'->>'subject'))`,
		`CREATE INDEX IF NOT EXISTS akoutpost_proxysession_sid ON ` + AuthentikTable +
			` ((session_data->'akoutpost'->>'sid'))`,
	} {
		if _, err := p.pool.Exec(ctx, s); err != nil {
			return fmt.Errorf("authentik postgres session store: creating index: %w", err)
		}
	}
	return nil
}

type authentikData struct {
	Akoutpost struct {
		Provider string `json:"provider"`
		Subject  string `json:"subject"`
		SID      string `json:"sid"`
		Data     []byte `json:"data"`
	} `json:"akoutpost"`
}

// Load implements [Store].
func (p *AuthentikPostgres) Load(ctx context.Context, id string) (Session, error) {
	if !ValidID(id) {
		return Session{}, ErrNotFound
	}
	var raw []byte
	s := Session{ID: id}
	err := p.pool.QueryRow(ctx, `SELECT session_data, expires FROM `+AuthentikTable+
		` WHERE session_key = $1 AND expires > $2 AND session_data ? 'akoutpost'`, id, p.now()).Scan(&raw, &s.Expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return Session{}, ErrNotFound
	}
	if err != nil {
		return Session{}, fmt.Errorf("authentik postgres session store: loading session: %w", err)
	}
	var d authentikData
	if err := json.Unmarshal(raw, &d); err != nil {
		return Session{}, ErrNotFound
	}
	s.Provider, s.Subject, s.SID, s.Data = d.Akoutpost.Provider, d.Akoutpost.Subject, d.Akoutpost.SID, d.Akoutpost.Data
	return s, nil
}

// Save implements [Store].
func (p *AuthentikPostgres) Save(ctx context.Context, s Session) error {
	if err := validate(s); err != nil {
		return err
	}
	var d authentikData
	d.Akoutpost.Provider, d.Akoutpost.Subject, d.Akoutpost.SID, d.Akoutpost.Data = s.Provider, s.Subject, s.SID, s.Data
	raw, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("authentik postgres session store: encoding session: %w", err)
	}
	var userID *uuid.UUID
	if u, err := uuid.Parse(s.Subject); err == nil {
		userID = &u
	}
	_, err = p.pool.Exec(ctx, `INSERT INTO `+AuthentikTable+` (uuid, session_key, user_id, session_data, expires, expiring)
		VALUES ($1, $2, $3, $4, $5, true)
		ON CONFLICT (session_key) DO UPDATE SET user_id = EXCLUDED.user_id,
			session_data = EXCLUDED.session_data, expires = EXCLUDED.expires, expiring = true`,
		uuid.New(), s.ID, userID, raw, s.Expires)
	if err != nil {
		return fmt.Errorf("authentik postgres session store: saving session: %w", err)
	}
	return nil
}

// Delete implements [Store].
func (p *AuthentikPostgres) Delete(ctx context.Context, f Filter) (int, error) {
	if err := f.check(); err != nil {
		return 0, err
	}
	where, val := `session_key = $1`, f.ID
	switch {
	case f.Subject != "":
		where, val = `session_data->'akoutpost'->>'subject' = $1`, f.Subject
	case f.SID != "":
		where, val = `session_data->'akoutpost'->>'sid' = $1`, f.SID
	}
	tag, err := p.pool.Exec(ctx, `DELETE FROM `+AuthentikTable+` WHERE `+where+
		` AND session_data ? 'akoutpost' AND ($2 = '' OR session_data->'akoutpost'->>'provider' = $2)`, val, f.Provider)
	if err != nil {
		return 0, fmt.Errorf("authentik postgres session store: deleting sessions: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
