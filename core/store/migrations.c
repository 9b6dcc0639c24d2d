/*
 * core/store/migrations.c - the schema, as an ordered list of migrations.
 * Append new entries at the end with the next version; never edit or
 * reorder an entry once it has shipped.
 */
#include "migrations.h"

const struct im_migration im_migrations[] = {
	{
		1,
		"kv and meta",
		"CREATE TABLE kv (\n"
		"  ns TEXT NOT NULL,\n"
		"  key TEXT NOT NULL,\n"
		"  value BLOB,\n"
		"  updated_at INTEGER NOT NULL,\n"
		"  PRIMARY KEY (ns, key)\n"
		");\n"
		"CREATE TABLE meta (\n"
		"  key TEXT PRIMARY KEY,\n"
		"  value TEXT\n"
		");\n",
	},
	{
		2,
		"incidents, timeline, idempotency",
		"CREATE TABLE incidents (\n"
		"  number INTEGER PRIMARY KEY,\n"
		"  title TEXT NOT NULL,\n"
		"  description TEXT NOT NULL DEFAULT '',\n"
		"  severity INTEGER NOT NULL CHECK (severity BETWEEN 1 AND 4),\n"
		"  status TEXT NOT NULL,\n"
		"  service TEXT,\n"
		"  commander TEXT,\n"
		"  duplicate_of TEXT,\n"
		"  created_at INTEGER NOT NULL,\n"
		"  updated_at INTEGER NOT NULL\n"
		");\n"
		"CREATE INDEX incidents_by_status ON incidents(status, number);\n"
		"CREATE INDEX incidents_by_severity ON incidents(severity, number);\n"
		"CREATE INDEX incidents_by_service ON incidents(service, number);\n"
		"CREATE TABLE events (\n"
		"  seq INTEGER PRIMARY KEY,\n"
		"  incident INTEGER NOT NULL REFERENCES incidents(number),\n"
		"  type TEXT NOT NULL,\n"
		"  time INTEGER NOT NULL,\n"
		"  body TEXT NOT NULL\n"
		");\n"
		"CREATE INDEX events_by_incident ON events(incident, seq);\n"
		"CREATE TABLE idempotency (\n"
		"  key TEXT PRIMARY KEY,\n"
		"  scope TEXT NOT NULL,\n"
		"  status INTEGER NOT NULL,\n"
		"  response TEXT NOT NULL,\n"
		"  created_at INTEGER NOT NULL\n"
		");\n",
	},
};

const size_t im_migrations_count =
    sizeof(im_migrations) / sizeof(im_migrations[0]);
