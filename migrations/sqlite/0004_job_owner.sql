-- The instance that claimed a running job. One SQLite file has one server,
-- so this is informational here; on PostgreSQL it is the job's lease.
ALTER TABLE jobs ADD COLUMN owner TEXT;
