#!/bin/sh
# Runs once, on the first start of the postgres container: the UI/agent-host database beside the hub's.
set -e
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -c "CREATE DATABASE genailabs OWNER \"$POSTGRES_USER\""
