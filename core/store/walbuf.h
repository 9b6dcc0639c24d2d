/*
 * core/store/walbuf - an SQLite VFS over the default one that turns the
 * many small writes of a WAL commit into one.
 *
 * SQLite appends a commit to the WAL as two writes per page (the frame
 * header, then the page), so a batch of the group writer that touched 30
 * pages was 60 pwrite() calls before its fsync. Through this VFS the WAL's
 * contiguous writes collect in a buffer and reach the file as one write
 * (per 124 KiB, the most the unix VFS takes in one call) when anything
 * needs them there: the sync (every commit, synchronous=
 * FULL), a write elsewhere in the file, a read, a size query, a truncate,
 * the close, or a wal-index barrier or lock (a commit without a sync
 * publishes its frames there, so they are written first).
 *
 * Durability is unchanged: nothing was promised before the sync, and the
 * sync writes everything first. A crash before it loses what SQLite had
 * not synced either (tests/crash cuts the power at random points of this
 * path). Every other file passes straight through.
 */
#ifndef IM_CORE_STORE_WALBUF_H
#define IM_CORE_STORE_WALBUF_H

/* The VFS's name for sqlite3_open_v2, registered on the first call over
 * the default VFS of that moment; NULL (use the default) if it could not
 * be registered. */
const char *im_walbuf_vfs(void);

#endif
