#include "jobwire_support.h"

#include <sqlite3.h>

void jobwire_sqlite_skip_memory_statistics(void) {
    // SQLITE_MISUSE once SQLite is initialized: then the setting stays as it was, which is only slower.
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

void jobwire_sqlite_keep_wal_on_close(void *connection) {
    (void)sqlite3_db_config((sqlite3 *)connection, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)0);
}

int jobwire_sqlite_check_row_checksums(void *prepared) {
    sqlite3_stmt *statement = (sqlite3_stmt *)prepared;
    static const uint8_t zero = 0;
    int code;
    while ((code = sqlite3_step(statement)) == SQLITE_ROW) {
        if (sqlite3_column_type(statement, 2) == SQLITE_NULL) continue;
        sqlite3_int64 stored = sqlite3_column_int64(statement, 2);
        uint32_t crc = 0xFFFFFFFFu;
        for (int column = 0; column < 4; column++) {
            if (column == 2) continue;
            // The bytes first, then their count, as SQLite asks (the count of the converted value).
            const void *bytes = sqlite3_column_blob(statement, column);
            int length = sqlite3_column_bytes(statement, column);
            if (length > 0) crc = jobwire_crc32c_update(crc, bytes, (size_t)length);
            crc = jobwire_crc32c_update(crc, &zero, 1);
        }
        sqlite3_int64 expected = (sqlite3_int64)(crc ^ 0xFFFFFFFFu) | ((sqlite3_int64)1 << 32);
        if (stored != expected) return SQLITE_ROW;
    }
    return code;
}
