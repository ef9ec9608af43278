#!/bin/bash
# Docker mode: the schema registry's database (native mode: scripts/stack creates it).
set -e
psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -c "CREATE DATABASE apicurio OWNER $POSTGRES_USER"
