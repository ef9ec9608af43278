#!/bin/sh
# Runs once, when the postgres container initialises its data directory (docker-compose.yml):
# lets replication connections in over TCP with a SCRAM password, as native mode's pg_hba.conf does.
echo "host replication all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
