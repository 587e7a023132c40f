// Fills a broker's store with ended jobs (and their events) the way the broker writes them, checksums
// included, in seconds: `fill_store STORE.sqlite JOBS`. The store must hold one job run to its end by the
// broker, the template: its row is copied JOBS times with new ids, and the log gets JOBS events (the
// broker's default retention for 1,000,000 jobs), copies of the template's last one-event row, four to a
// row, as a broker busy with single creates commits them.
// Build: cc -O2 -I Sources/CJobwireSupport/include Benchmarks/fill_store.c Sources/CJobwireSupport/crc32c.c -lsqlite3
#include <jobwire_support.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// crc(a, b, body): the broker's row checksum (CRC-32C of the parts, each followed by a zero byte, bit 32 set).
static void crc(sqlite3_context *context, int count, sqlite3_value **values) {
    (void)count;
    static const uint8_t zero = 0;
    uint32_t value = 0xFFFFFFFFu;
    for (int index = 0; index < 3; index++) {
        const void *bytes = sqlite3_value_blob(values[index]);
        int length = sqlite3_value_bytes(values[index]);
        if (length > 0) value = jobwire_crc32c_update(value, bytes, (size_t)length);
        value = jobwire_crc32c_update(value, &zero, 1);
    }
    sqlite3_result_int64(context, (sqlite3_int64)(value ^ 0xFFFFFFFFu) | ((sqlite3_int64)1 << 32));
}

static void run(sqlite3 *db, const char *sql) {
    char *error = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &error) != SQLITE_OK) {
        fprintf(stderr, "fill_store: %s\n", error);
        exit(1);
    }
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: fill_store STORE.sqlite JOBS\n");
        return 2;
    }
    long jobs = atol(argv[2]);
    sqlite3 *db;
    if (sqlite3_open(argv[1], &db) != SQLITE_OK) return 1;
    sqlite3_create_function(db, "crc", 3, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, crc, NULL, NULL);
    char sql[4096];
    run(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF; BEGIN");
    snprintf(sql, sizeof sql,
             "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %ld), "
             "r AS (SELECT printf('us_jb_fill%%08d', i) AS id, j.status, j.type, j.operation, j.source, "
             "j.createdAt - i AS createdAt, CAST(replace(CAST(j.body AS TEXT), j.id, printf('us_jb_fill%%08d', i)) "
             "AS BLOB) AS body FROM n, (SELECT * FROM jobs LIMIT 1) AS j) "
             "INSERT INTO jobs (id, status, type, operation, source, parentId, createdAt, idempotencyKey, "
             "idempotencyHash, formerOwners, crc, body) "
             "SELECT id, status, type, operation, source, NULL, createdAt, NULL, NULL, NULL, crc(id, status, body), "
             "body FROM r",
             jobs);
    run(db, sql);
    // JOBS events, four to a row, each a copy of the template's last one-event row, seqs after the template's.
    snprintf(sql, sizeof sql,
             "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %ld), "
             "t AS (SELECT MAX(lastSeq) AS top, (SELECT body FROM event_batches WHERE firstSeq = lastSeq ORDER BY lastSeq DESC LIMIT 1) AS body "
             "FROM event_batches), "
             "r AS (SELECT t.top + 4 * i - 3 AS firstSeq, t.top + 4 * i AS lastSeq, "
             "CAST(t.body || t.body || t.body || t.body AS BLOB) AS body FROM n, t) "
             "INSERT INTO event_batches (lastSeq, firstSeq, crc, body) "
             "SELECT lastSeq, firstSeq, crc(CAST(firstSeq AS TEXT), CAST(lastSeq AS TEXT), body), body FROM r",
             jobs / 4);
    run(db, sql);
    run(db, "COMMIT; PRAGMA wal_checkpoint(TRUNCATE)");
    sqlite3_close(db);
    return 0;
}
