#include <jobwire_support.h>
#include <sqlite3.h>
#include <stdio.h>
#include <time.h>

// The cost of each check the broker makes at start, alone, on a store: `start_checks STORE.sqlite`.
// Build: cc -O2 -I Sources/CJobwireSupport/include Benchmarks/start_checks.c Sources/CJobwireSupport/sqlite.c Sources/CJobwireSupport/crc32c.c -lsqlite3
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static double cpu(void) { struct timespec t; clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main(int argc, char **argv) {
    sqlite3 *db; sqlite3_open(argv[1], &db);
    sqlite3_exec(db, "PRAGMA locking_mode = EXCLUSIVE", 0, 0, 0);
    const char *sqls[] = {"PRAGMA integrity_check(5)", "PRAGMA quick_check(5)",
        "SELECT id, status, crc, body FROM jobs",
        "SELECT CAST(firstSeq AS TEXT), CAST(lastSeq AS TEXT), crc, body FROM event_batches"};
    for (int i = 0; i < 4; i++) {
        sqlite3_stmt *s; sqlite3_prepare_v2(db, sqls[i], -1, &s, 0);
        double w = now(), c = cpu(); int rc;
        if (i < 2) { while ((rc = sqlite3_step(s)) == SQLITE_ROW) printf("  %s\n", sqlite3_column_text(s, 0)); }
        else rc = jobwire_sqlite_check_row_checksums(s);
        printf("%-90s rc %d wall %.2f s cpu %.2f s\n", sqls[i], rc, now() - w, cpu() - c);
        sqlite3_finalize(s);
    }
    return 0;
}
