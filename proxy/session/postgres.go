package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Postgres is a [Store] in a PostgreSQL table (pgx v5), so that replicas
// share sessions. Call [Postgres.EnsureSchema] once before use, or create
// the table yourself with the statements it runs.
type Postgres struct {
	pool  *pgxpool.Pool
	table string
	now   func() time.Time
}

var _ Store = (*Postgres)(nil)

// validTableName reports whether name is a plain PostgreSQL identifier
// (^[a-z_][a-z0-9_]{0,62}$), safe to put in SQL unquoted. A loop, not a
// regexp: the bounded repetition compiles to a large program at start-up.
func validTableName(name string) bool {
	if len(name) == 0 || len(name) > 63 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || c == '_' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// NewPostgres returns a store using pool and the table named table (empty
// means "akoutpost_proxy_session"). now is the clock used for expiry; nil
// means time.Now. The caller owns pool and closes it. No I/O happens here.
func NewPostgres(pool *pgxpool.Pool, table string, now func() time.Time) (*Postgres, error) {
	if pool == nil {
		return nil, errors.New("postgres session store: no pool")
	}
	if table == "" {
		table = "akoutpost_proxy_session"
	}
	if !validTableName(table) {
		return nil, fmt.Errorf("postgres session store: invalid table name %q", table)
	}
	if now == nil {
		now = time.Now
	}
	return &Postgres{pool: pool, table: table, now: now}, nil
}

// EnsureSchema creates the table and its indexes when they do not exist.
func (p *Postgres) EnsureSchema(ctx context.Context) error {
	stmts := []string{
		`CREATE TABLE IF NOT EXISTS ` + p.table + ` (
			id text PRIMARY KEY,
			provider text NOT NULL,
			subject text NOT NULL DEFAULT '',
			sid text NOT NULL DEFAULT '',
			expires timestamptz NOT NULL,
			data bytea NOT NULL
		)`,
		`CREATE INDEX IF NOT EXISTS ` + p.table + `_subject ON ` + p.table + ` (subject) WHERE subject <> ''`,
		`CREATE INDEX IF NOT EXISTS ` + p.table + `_sid ON ` + p.table + ` (sid) WHERE sid <> ''`,
		`CREATE INDEX IF NOT EXISTS ` + p.table + `_expires ON ` + p.table + ` (expires)`,
	}
	for _, s := range stmts {
		if _, err := p.pool.Exec(ctx, s); err != nil {
			return fmt.Errorf("postgres session store: creating schema: %w", err)
		}
	}
	return nil
}

// Load implements [Store].
func (p *Postgres) Load(ctx context.Context, id string) (Session, error) {
	if !ValidID(id) {
		return Session{}, ErrNotFound
	}
	s := Session{ID: id}
	err := p.pool.QueryRow(ctx,
		`SELECT provider, subject, sid, expires, data FROM `+p.table+` WHERE id = $1 AND expires > $2`,
		id, p.now()).Scan(&s.Provider, &s.Subject, &s.SID, &s.Expires, &s.Data)
	if errors.Is(err, pgx.ErrNoRows) {
		return Session{}, ErrNotFound
	}
	if err != nil {
		return Session{}, fmt.Errorf("postgres session store: loading session: %w", err)
	}
	return s, nil
}

// Save implements [Store].
func (p *Postgres) Save(ctx context.Context, s Session) error {
	if err := validate(s); err != nil {
		return err
	}
	if s.Data == nil {
		s.Data = []byte{}
	}
	_, err := p.pool.Exec(ctx, `INSERT INTO `+p.table+` (id, provider, subject, sid, expires, data)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (id) DO UPDATE SET provider = EXCLUDED.provider, subject = EXCLUDED.subject,
			sid = EXCLUDED.sid, expires = EXCLUDED.expires, data = EXCLUDED.data`,
		s.ID, s.Provider, s.Subject, s.SID, s.Expires, s.Data)
	if err != nil {
		return fmt.Errorf("postgres session store: saving session: %w", err)
	}
	return nil
}

// Delete implements [Store].
func (p *Postgres) Delete(ctx context.Context, f Filter) (int, error) {
	if err := f.check(); err != nil {
		return 0, err
	}
	col, val := "id", f.ID
	switch {
	case f.Subject != "":
		col, val = "subject", f.Subject
	case f.SID != "":
		col, val = "sid", f.SID
	}
	q := `DELETE FROM ` + p.table + ` WHERE ` + col + ` = $1 AND ($2 = '' OR provider = $2)`
	tag, err := p.pool.Exec(ctx, q, val, f.Provider)
	if err != nil {
		return 0, fmt.Errorf("postgres session store: deleting sessions: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// Cleanup removes expired sessions and reports how many.
func (p *Postgres) Cleanup(ctx context.Context) (int, error) {
	tag, err := p.pool.Exec(ctx, `DELETE FROM `+p.table+` WHERE expires <= $1`, p.now())
	if err != nil {
		return 0, fmt.Errorf("postgres session store: removing expired sessions: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
