#include "jobwire_support.h"

#include <string.h>

static uint32_t table[256];

static void make_table(void) {
    for (uint32_t index = 0; index < 256; index++) {
        uint32_t crc = index;
        for (int bit = 0; bit < 8; bit++) crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
        table[index] = crc;
    }
}

static uint32_t update_table(uint32_t crc, const uint8_t *p, size_t length) {
    while (length--) crc = table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t update_sse42(uint32_t crc, const uint8_t *p, size_t length) {
    uint64_t wide = crc;
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        wide = __builtin_ia32_crc32di(wide, word);
        p += 8;
        length -= 8;
    }
    crc = (uint32_t)wide;
    while (length--) crc = __builtin_ia32_crc32qi(crc, *p++);
    return crc;
}
#elif defined(__aarch64__) && defined(__ARM_FEATURE_CRC32)
#include <arm_acle.h>
static uint32_t update_arm(uint32_t crc, const uint8_t *p, size_t length) {
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        crc = __crc32cd(crc, word);
        p += 8;
        length -= 8;
    }
    while (length--) crc = __crc32cb(crc, *p++);
    return crc;
}
#endif

typedef uint32_t (*update_function)(uint32_t, const uint8_t *, size_t);

static update_function choose(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2")) return update_sse42;
#elif defined(__aarch64__) && defined(__ARM_FEATURE_CRC32)
    return update_arm;
#endif
    return update_table;
}

/// Chosen once, before main (a constructor), so that later calls from any thread only read it.
static update_function chosen;

__attribute__((constructor)) static void jobwire_crc_init(void) {
    make_table();
    chosen = choose();
}

uint32_t jobwire_crc32c_update(uint32_t crc, const void *bytes, size_t length) {
    return chosen(crc, (const uint8_t *)bytes, length);
}

uint32_t jobwire_crc32c_update_portable(uint32_t crc, const void *bytes, size_t length) {
    return update_table(crc, (const uint8_t *)bytes, length);
}
