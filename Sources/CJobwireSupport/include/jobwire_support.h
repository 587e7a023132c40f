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

#endif
