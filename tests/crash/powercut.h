/*
 * tests/crash/powercut - an SQLite VFS that models a power cut.
 *
 * Writes to the database and its WAL stay in this process's memory until
 * the file is synced; reads see them (as the page cache would). So when
 * the process dies, everything written since the file's last sync is
 * gone, as if the machine had lost power, and what was synced is on disk.
 * A crash point can be armed: the Nth write or sync (counted over all
 * files) ends the process with _exit(POWERCUT_EXIT) instead; a sync cut
 * that way first lets a random prefix of its pending bytes, in whole
 * 512-byte sectors, reach the disk (a sync torn part way through, also
 * inside one large write: im's store writes a WAL commit as one).
 */
#ifndef IM_TESTS_POWERCUT_H
#define IM_TESTS_POWERCUT_H

#define POWERCUT_EXIT 77

/* Registers the VFS as the default, wrapping the previous default.
 * crash_at: 0 = never, else the I/O call (1-based) that cuts power.
 * seed: for the torn sync. Returns 0 or an SQLite error code. */
int powercut_install(long crash_at, unsigned seed);
/* Writes and syncs seen so far. */
long powercut_io_count(void);

#endif
