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
	{
		3,
		"notifications: subscriptions, outbox, posted messages",
		/* Subscriptions added with `im chatops subscriptions add`. */
		"CREATE TABLE subscriptions (\n"
		"  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
		"  connector TEXT NOT NULL,\n"
		"  channel TEXT NOT NULL,\n"
		"  events TEXT NOT NULL,\n"          /* JSON array of globs */
		"  min_severity INTEGER NOT NULL,\n" /* 1..4 */
		"  services TEXT NOT NULL,\n"        /* JSON array; [] = all */
		"  mode TEXT NOT NULL,\n"            /* update|thread|post */
		"  created_at INTEGER NOT NULL\n"
		");\n"
		/* One row per (event, instance, channel), written in the
		 * event's transaction. state 0 pending, 1 dead letter;
		 * delivered rows are deleted, and AUTOINCREMENT keeps
		 * their ids (the dedup keys) from coming back. A row is
		 * claimable when pending, not_before has passed and
		 * lease_until ran out. */
		"CREATE TABLE outbox (\n"
		"  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
		"  incident INTEGER NOT NULL,\n"
		"  event_seq INTEGER NOT NULL REFERENCES events(seq),\n"
		"  event_type TEXT NOT NULL,\n"
		"  severity INTEGER NOT NULL,\n"
		"  critical INTEGER NOT NULL,\n"
		"  connector TEXT NOT NULL,\n"
		"  channel TEXT NOT NULL,\n"
		"  mode TEXT NOT NULL,\n"
		"  state INTEGER NOT NULL DEFAULT 0,\n"
		"  created_at INTEGER NOT NULL,\n"
		"  not_before INTEGER NOT NULL DEFAULT 0,\n"
		"  attempts INTEGER NOT NULL DEFAULT 0,\n"
		"  claimed_by TEXT,\n"
		"  lease_until INTEGER NOT NULL DEFAULT 0,\n"
		"  http_status INTEGER,\n"
		"  error TEXT,\n"
		"  hint TEXT,\n"
		"  updated_at INTEGER NOT NULL\n"
		");\n"
		/* Covers the claim: critical first, oldest first. */
		"CREATE INDEX outbox_claim ON outbox(state, critical, id, "
		"lease_until, not_before);\n"
		/* The message posted for an incident in a channel, which
		 * later events edit (mode update) or reply to (thread). */
		"CREATE TABLE notify_messages (\n"
		"  incident INTEGER NOT NULL,\n"
		"  connector TEXT NOT NULL,\n"
		"  channel TEXT NOT NULL,\n"
		"  message_id TEXT NOT NULL,\n"
		"  thread_id TEXT,\n"
		"  updated_at INTEGER NOT NULL,\n"
		"  PRIMARY KEY (incident, connector, channel)\n"
		") WITHOUT ROWID;\n",
	},
};

const size_t im_migrations_count =
    sizeof(im_migrations) / sizeof(im_migrations[0]);
