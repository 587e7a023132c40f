#ifndef JOBWIRE_SUPPORT_H
#define JOBWIRE_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

/// Continues a CRC-32C (Castagnoli) over `length` bytes: pass 0xFFFFFFFF to start, and invert the
/// result at the end. Uses the processor's CRC instructions when it has them (SSE 4.2, ARMv8 CRC), a
/// table otherwise; every path gives the same result.
uint32_t jobwire_crc32c_update(uint32_t crc, const void *bytes, size_t length);

/// The same with the table only, whatever the processor: for tests that the paths agree.
uint32_t jobwire_crc32c_update_portable(uint32_t crc, const void *bytes, size_t length);

/// Turns off SQLite's memory statistics, which take a global mutex around every allocation SQLite
/// makes. Process-wide; takes effect only before SQLite is first used (later it does nothing).
void jobwire_sqlite_skip_memory_statistics(void);

/// Gathers the write-ahead log writes of the SQLite databases in `folder` (a store opened with
/// synchronous=FULL) and writes them at once when SQLite syncs the log: one system call per commit
/// instead of two per page. Registers the gathering VFS as the process's default on first use; files
/// outside the folders named here pass through it untouched. Returns 0 when it could not.
int jobwire_sqlite_gather_wal_in(const char *folder);

/// Stops gathering in `folder` (its store closed): a store opened there later without fsync, or any other
/// database, writes straight through again.
void jobwire_sqlite_stop_gathering_wal_in(const char *folder);

/// Whether a log opened now at path `file` would be gathered (for tests).
int jobwire_sqlite_gathers(const char *file);

#endif
