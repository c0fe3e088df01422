// Tensor buffers. Small ones come from malloc; large ones are mapped pages that a freed tensor
// hands to a cache, where the next request of the same size finds them. Training allocates the
// same sizes every step, so after the first step large buffers are reused exactly: no page
// faults, and no heap fragmentation (glibc's heap grew to ~1.9× the live tensors on maf-large).

#include "CKernels.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

// A cached block that no request has taken for STALE_AFTER large requests is unmapped at the next
// miss: a training step makes a few hundred, so the blocks of a loop in progress stay, and
// those of a finished phase (other sizes) go.
enum { SMALL_ALIGNMENT = 64, CACHE_ENTRIES = 512, STALE_AFTER = 4096 };

struct ck_buffer_cache {
    pthread_mutex_t lock;
    size_t limit;   // most bytes kept
    size_t bytes;   // bytes kept now
    unsigned long clock;   // large requests so far
    long count;
    struct { void *pointer; size_t bytes; unsigned long released; } entries[CACHE_ENTRIES];   // oldest first
};

static size_t page_rounded(size_t bytes) {
    size_t page = 4096;
    return (bytes + page - 1) / page * page;
}

static void *map_pages(size_t bytes) {
    void *p = mmap(0, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    return p == MAP_FAILED ? 0 : p;
}

// Removes entry i, keeping the others in the order they were cached.
static void remove_entry(ck_buffer_cache *cache, long i) {
    cache->bytes -= cache->entries[i].bytes;
    memmove(cache->entries + i, cache->entries + i + 1, (size_t)(cache->count - i - 1) * sizeof cache->entries[0]);
    cache->count--;
}

void *ck_buffer_allocate(ck_buffer_cache *cache, size_t bytes) {
    if (bytes < CK_BUFFER_CACHED_FROM) {
        return aligned_alloc(SMALL_ALIGNMENT, (bytes + SMALL_ALIGNMENT - 1) / SMALL_ALIGNMENT * SMALL_ALIGNMENT);
    }
    size_t size = page_rounded(bytes);
    void *found = 0;
    void *evicted[CACHE_ENTRIES];
    size_t evictedBytes[CACHE_ENTRIES];
    long evictions = 0;
    pthread_mutex_lock(&cache->lock);
    // The most recently cached block of this size (its pages are the likeliest to be warm).
    for (long i = cache->count - 1; i >= 0; i--) {
        if (cache->entries[i].bytes == size) {
            found = cache->entries[i].pointer;
            remove_entry(cache, i);
            break;
        }
    }
    if (!found) {
        while (cache->count > 0 && cache->clock - cache->entries[0].released > STALE_AFTER) {
            evicted[evictions] = cache->entries[0].pointer;
            evictedBytes[evictions] = cache->entries[0].bytes;
            evictions++;
            remove_entry(cache, 0);
        }
    }
    cache->clock++;
    pthread_mutex_unlock(&cache->lock);
    for (long i = 0; i < evictions; i++) munmap(evicted[i], evictedBytes[i]);
    return found ? found : map_pages(size);
}

void ck_buffer_release(ck_buffer_cache *cache, void *pointer, size_t bytes) {
    if (!pointer) return;
    if (bytes < CK_BUFFER_CACHED_FROM) {
        free(pointer);
        return;
    }
    size_t size = page_rounded(bytes);
    int kept = 0;
    pthread_mutex_lock(&cache->lock);
    if (cache->count < CACHE_ENTRIES && cache->bytes + size <= cache->limit) {
        cache->entries[cache->count].pointer = pointer;
        cache->entries[cache->count].bytes = size;
        cache->entries[cache->count].released = cache->clock;
        cache->count++;
        cache->bytes += size;
        kept = 1;
    }
    pthread_mutex_unlock(&cache->lock);
    if (!kept) munmap(pointer, size);
}

void ck_buffer_clear(ck_buffer_cache *cache) {
    for (;;) {
        void *pointer = 0;
        size_t size = 0;
        pthread_mutex_lock(&cache->lock);
        if (cache->count > 0) {
            pointer = cache->entries[cache->count - 1].pointer;
            size = cache->entries[cache->count - 1].bytes;
            remove_entry(cache, cache->count - 1);
        }
        pthread_mutex_unlock(&cache->lock);
        if (!pointer) return;
        munmap(pointer, size);
    }
}

size_t ck_buffer_cached_bytes(ck_buffer_cache *cache) {
    pthread_mutex_lock(&cache->lock);
    size_t bytes = cache->bytes;
    pthread_mutex_unlock(&cache->lock);
    return bytes;
}

void ck_buffer_set_limit(ck_buffer_cache *cache, size_t limit) {
    pthread_mutex_lock(&cache->lock);
    cache->limit = limit;
    pthread_mutex_unlock(&cache->lock);
}

size_t ck_buffer_limit(ck_buffer_cache *cache) {
    pthread_mutex_lock(&cache->lock);
    size_t limit = cache->limit;
    pthread_mutex_unlock(&cache->lock);
    return limit;
}

ck_buffer_cache *ck_buffer_cache_create(size_t limit) {
    ck_buffer_cache *cache = (ck_buffer_cache *)calloc(1, sizeof *cache);
    if (!cache) return 0;
    pthread_mutex_init(&cache->lock, 0);
    cache->limit = limit;
    return cache;
}

void ck_buffer_cache_destroy(ck_buffer_cache *cache) {
    if (!cache) return;
    ck_buffer_clear(cache);
    pthread_mutex_destroy(&cache->lock);
    free(cache);
}

ck_buffer_cache *ck_shared_buffer_cache(void) {
    static ck_buffer_cache shared = {PTHREAD_MUTEX_INITIALIZER, (size_t)1 << 30, 0, 0, 0, {{0, 0, 0}}};
    return &shared;
}
