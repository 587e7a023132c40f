#include "jobwire_support.h"

#include <sqlite3.h>

void jobwire_sqlite_skip_memory_statistics(void) {
    // SQLITE_MISUSE once SQLite is initialized: then the setting stays as it was, which is only slower.
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}
