/*
 * core/store/migrations.h - internal: the ordered list of schema migrations
 * that core/store/store.c applies. Not part of the public interface.
 */
#ifndef IM_CORE_STORE_MIGRATIONS_H
#define IM_CORE_STORE_MIGRATIONS_H

#include <stddef.h>

/* One migration: versions start at 1 and strictly increase along the list;
 * sql may hold several statements. Applied ones are never edited. */
struct im_migration {
	int version;
	const char *name;
	const char *sql;
};

extern const struct im_migration im_migrations[];
extern const size_t im_migrations_count;

#endif
