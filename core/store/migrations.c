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
};

const size_t im_migrations_count =
    sizeof(im_migrations) / sizeof(im_migrations[0]);
