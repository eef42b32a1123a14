-- Nothing to do on PostgreSQL: its PRIMARY KEY already implies NOT NULL.
-- The SQLite migration of the same number adds the NOT NULL that SQLite's
-- text primary keys lacked; this one keeps the two version lists equal.
SELECT 1;
