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

/// Keeps the write-ahead log as it is when the connection (a `sqlite3 *`) closes: no checkpoint into the
/// database file, no removal. For a store the broker refuses to start on, which must stay as it found it.
void jobwire_sqlite_keep_wal_on_close(void *connection);

/// Steps `statement` (a prepared `sqlite3_stmt *` whose columns are: a text, a text, the stored checksum,
/// the body) and checks each row's checksum: CRC-32C of the two texts and the body, each followed by a zero
/// byte, tagged by bit 32 (as the broker writes it). Rows with a NULL checksum are skipped. Returns
/// SQLITE_DONE when every row matches, SQLITE_ROW with the statement on the first row that does not (step
/// it again by calling again), or SQLite's error code. One loop in C: no allocation per row.
int jobwire_sqlite_check_row_checksums(void *statement);

#endif
