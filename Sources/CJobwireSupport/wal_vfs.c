// A thin SQLite VFS over the default one that gathers a transaction's write-ahead log frames and writes
// them with one system call when SQLite syncs the log.
//
// SQLite writes each WAL frame with two pwrite calls (its 24-byte header, then the page): a commit of a
// single job change made eight of them before its fsync, and a busy broker about 40,000 a second. This
// VFS keeps the writes to a WAL file in a buffer while they are contiguous and hands them to the real
// file in one write before anything that must see them: a sync (SQLite syncs the log at every commit
// under synchronous=FULL, before it counts the commit as done), a read that overlaps them, a size or
// truncate, a file control, a close. Every other file passes straight through.
//
// Only for synchronous=FULL: under NORMAL SQLite does not sync the log at a commit, and a commit must
// reach the operating system before the broker answers. The VFS is the process's default, and gathers
// only the logs of folders a store with fsync named while it is open (jobwire_sqlite_gather_wal_in, and
// jobwire_sqlite_stop_gathering_wal_in when it closes); every other file, and every log elsewhere, goes
// to the default VFS untouched. A log keeps the choice made when SQLite opened it.
#include "jobwire_support.h"

#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

enum { capacity = 4 << 20 };

typedef struct {
    sqlite3_file base;
    sqlite3_file *real;
    unsigned char *buffer;
    sqlite3_int64 offset;
    int length;
} WalFile;

static sqlite3_vfs *parent;
static sqlite3_vfs vfs;
static sqlite3_io_methods methods;

/// SQLite's unix VFS writes at most 128 KiB a call (it masks the length to 17 bits), so gathered bytes go
/// in chunks of 64 KiB: a one-job commit in one call, a busy broker's commit of hundreds of pages in a few.
enum { chunk = 64 << 10 };

static int flush(WalFile *f) {
    int done = 0;
    int rc = SQLITE_OK;
    while (rc == SQLITE_OK && done < f->length) {
        int amount = f->length - done < chunk ? f->length - done : chunk;
        rc = f->real->pMethods->xWrite(f->real, f->buffer + done, amount, f->offset + done);
        done += amount;
    }
    f->length = 0;
    return rc;
}

static int walClose(sqlite3_file *p) {
    WalFile *f = (WalFile *)p;
    int rc = flush(f);
    int closed = f->real->pMethods->xClose(f->real);
    free(f->buffer);
    f->buffer = NULL;
    return rc != SQLITE_OK ? rc : closed;
}

static int walRead(sqlite3_file *p, void *out, int amount, sqlite3_int64 offset) {
    WalFile *f = (WalFile *)p;
    if (f->length > 0 && offset < f->offset + f->length && offset + amount > f->offset) {
        int rc = flush(f);
        if (rc != SQLITE_OK) return rc;
    }
    return f->real->pMethods->xRead(f->real, out, amount, offset);
}

static int walWrite(sqlite3_file *p, const void *data, int amount, sqlite3_int64 offset) {
    WalFile *f = (WalFile *)p;
    if (f->length > 0 && offset == f->offset + f->length && f->length + amount <= capacity) {
        memcpy(f->buffer + f->length, data, (size_t)amount);
        f->length += amount;
        return SQLITE_OK;
    }
    // Not next to what is gathered (or too much): what is gathered goes first, in order.
    int rc = flush(f);
    if (rc != SQLITE_OK) return rc;
    if (amount > chunk) return f->real->pMethods->xWrite(f->real, data, amount, offset);
    memcpy(f->buffer, data, (size_t)amount);
    f->offset = offset;
    f->length = amount;
    return SQLITE_OK;
}

static int walTruncate(sqlite3_file *p, sqlite3_int64 size) {
    WalFile *f = (WalFile *)p;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xTruncate(f->real, size);
}

static int walSync(sqlite3_file *p, int flags) {
    WalFile *f = (WalFile *)p;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xSync(f->real, flags);
}

static int walFileSize(sqlite3_file *p, sqlite3_int64 *size) {
    WalFile *f = (WalFile *)p;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileSize(f->real, size);
}

static int walLock(sqlite3_file *p, int level) {
    WalFile *f = (WalFile *)p;
    return f->real->pMethods->xLock(f->real, level);
}

static int walUnlock(sqlite3_file *p, int level) {
    WalFile *f = (WalFile *)p;
    return f->real->pMethods->xUnlock(f->real, level);
}

static int walCheckReservedLock(sqlite3_file *p, int *out) {
    WalFile *f = (WalFile *)p;
    return f->real->pMethods->xCheckReservedLock(f->real, out);
}

static int walFileControl(sqlite3_file *p, int op, void *arg) {
    WalFile *f = (WalFile *)p;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileControl(f->real, op, arg);
}

static int walSectorSize(sqlite3_file *p) {
    WalFile *f = (WalFile *)p;
    return f->real->pMethods->xSectorSize(f->real);
}

static int walDeviceCharacteristics(sqlite3_file *p) {
    WalFile *f = (WalFile *)p;
    return f->real->pMethods->xDeviceCharacteristics(f->real);
}

static pthread_mutex_t foldersLock = PTHREAD_MUTEX_INITIALIZER;
static char *folders[64];
static int folderCount;

/// The index of the resolved folder in the list, or -1. The caller holds foldersLock.
static int folderIndex(const char *resolved) {
    for (int index = 0; index < folderCount; index++) {
        if (strcmp(folders[index], resolved) == 0) return index;
    }
    return -1;
}

/// Whether the log file `name` lies in a folder named by jobwire_sqlite_gather_wal_in.
static int gathered(const char *name) {
    char copy[PATH_MAX];
    char resolved[PATH_MAX];
    if (strlen(name) >= sizeof(copy)) return 0;
    strcpy(copy, name);
    if (!realpath(dirname(copy), resolved)) return 0;
    pthread_mutex_lock(&foldersLock);
    int found = folderIndex(resolved) >= 0;
    pthread_mutex_unlock(&foldersLock);
    return found;
}

static int walOpen(sqlite3_vfs *self, const char *name, sqlite3_file *file, int flags, int *outFlags) {
    (void)self;
    if (!(flags & SQLITE_OPEN_WAL) || !name || !gathered(name)) {
        return parent->xOpen(parent, name, file, flags, outFlags);
    }
    WalFile *f = (WalFile *)file;
    memset(f, 0, sizeof(WalFile));
    f->real = (sqlite3_file *)(f + 1);
    f->buffer = malloc(capacity);
    if (!f->buffer) return SQLITE_NOMEM;
    int rc = parent->xOpen(parent, name, f->real, flags, outFlags);
    if (rc != SQLITE_OK) {
        free(f->buffer);
        f->buffer = NULL;
        return rc;
    }
    f->base.pMethods = &methods;
    return SQLITE_OK;
}

static void registerVFS(void) {
    parent = sqlite3_vfs_find(NULL);
    if (!parent) return;
    methods = (sqlite3_io_methods){
        .iVersion = 1,
        .xClose = walClose,
        .xRead = walRead,
        .xWrite = walWrite,
        .xTruncate = walTruncate,
        .xSync = walSync,
        .xFileSize = walFileSize,
        .xLock = walLock,
        .xUnlock = walUnlock,
        .xCheckReservedLock = walCheckReservedLock,
        .xFileControl = walFileControl,
        .xSectorSize = walSectorSize,
        .xDeviceCharacteristics = walDeviceCharacteristics,
    };
    vfs = *parent;
    vfs.pNext = NULL;
    vfs.zName = "jobwire-wal";
    vfs.szOsFile = (int)sizeof(WalFile) + parent->szOsFile;
    vfs.xOpen = walOpen;
    if (sqlite3_vfs_register(&vfs, 1) != SQLITE_OK) parent = NULL;
}

static pthread_once_t registered = PTHREAD_ONCE_INIT;

int jobwire_sqlite_gather_wal_in(const char *folder) {
    pthread_once(&registered, registerVFS);
    if (!parent) return 0;
    char resolved[PATH_MAX];
    if (!realpath(folder, resolved)) return 0;
    pthread_mutex_lock(&foldersLock);
    int ok = folderIndex(resolved) >= 0;
    if (!ok && folderCount < (int)(sizeof(folders) / sizeof(folders[0]))) {
        char *copy = strdup(resolved);
        if (copy) {
            folders[folderCount++] = copy;
            ok = 1;
        }
    }
    pthread_mutex_unlock(&foldersLock);
    return ok;
}

void jobwire_sqlite_stop_gathering_wal_in(const char *folder) {
    char resolved[PATH_MAX];
    if (!realpath(folder, resolved)) return;
    pthread_mutex_lock(&foldersLock);
    int index = folderIndex(resolved);
    if (index >= 0) {
        free(folders[index]);
        folders[index] = folders[--folderCount];
    }
    pthread_mutex_unlock(&foldersLock);
}

int jobwire_sqlite_gathers(const char *file) { return file && gathered(file); }
