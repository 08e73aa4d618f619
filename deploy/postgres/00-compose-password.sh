#!/bin/sh
# docker-compose only: give the capture role the password from the .env file.
set -e
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cowjacket_capture') THEN
    CREATE ROLE cowjacket_capture LOGIN REPLICATION;
  END IF;
END \$\$;
ALTER ROLE cowjacket_capture PASSWORD '${CAPTURE_DB_PASSWORD}';
SQL
