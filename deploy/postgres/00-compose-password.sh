#!/bin/sh
# docker-compose only: give the capture role the password of the Docker
# secret capture_db_password (psql quotes it: any character is safe).
set -e
psql -v ON_ERROR_STOP=1 -v pw="$(cat "$CAPTURE_DB_PASSWORD_FILE")" --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cowjacket_capture') THEN
    CREATE ROLE cowjacket_capture LOGIN REPLICATION;
  END IF;
END $$;
ALTER ROLE cowjacket_capture PASSWORD :'pw';
SQL
