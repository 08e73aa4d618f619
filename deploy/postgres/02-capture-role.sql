-- Least privilege for capture: it may log in, stream WAL (REPLICATION) and
-- read the one form table (for `capture backfill`) — nothing else. Run as the
-- table's owner. Set the password out of band:
--   ALTER ROLE cowjacket_capture PASSWORD '…';
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cowjacket_capture') THEN
    CREATE ROLE cowjacket_capture LOGIN REPLICATION;
  END IF;
END
$$;
GRANT USAGE ON SCHEMA public TO cowjacket_capture;
GRANT SELECT ON public.form_submissions TO cowjacket_capture;

-- A publication needs the table's owner, so it is created here rather than by
-- capture (which creates it only when its role may). INSERTs only: updates,
-- deletes and truncates of form rows never become tickets.
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_publication WHERE pubname = 'cowjacket') THEN
    CREATE PUBLICATION cowjacket FOR TABLE public.form_submissions WITH (publish = 'insert');
  END IF;
END
$$;
