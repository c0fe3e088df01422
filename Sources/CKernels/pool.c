// A fork-join pool for short parallel loops.
//
// The loops that matter here (a 512×64·64×64 product, a 32K-element activation) take 10–50 µs;
// waking a sleeping thread costs about as much, so Dispatch's concurrentPerform only pays for
// much larger loops. These workers spin for a while after each job, so the next job's hand-off is
// a store and a cache-line transfer (well under a microsecond); after about a millisecond without
// work they sleep on a condition variable and the next job wakes them. (A backward pass has gaps
// of several hundred microseconds between products; spinning 8192 pauses instead of 65536 made
// `first-flow` 5–8% slower.)
//
// One job runs at a time. A call made while another job runs (from another thread, or from
// inside a job) runs its items serially on the calling thread, so nesting and concurrent callers
// are always safe.

#include "CKernels.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <unistd.h>

#define MAX_WORKERS 7
// Pause iterations a worker spins before it sleeps (a pause is 10–40 ns on current x86 cores).
#define SPIN_LIMIT 65536

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int workers;                   // threads besides the caller
    atomic_flag busy;              // held by the caller of the running job
    _Atomic unsigned long generation;
    _Atomic int sleepers;
    // The running job; written only while every worker has acknowledged the previous one.
    ck_pool_task task;
    void *context;
    long count;
    _Atomic long next;             // next unclaimed item
    _Atomic int acknowledged;      // workers finished with this generation
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, ATOMIC_FLAG_INIT};

static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static _Thread_local int inside_job = 0;

static void run_items(void) {
    inside_job = 1;
    for (;;) {
        long i = atomic_fetch_add_explicit(&pool.next, 1, memory_order_relaxed);
        if (i >= pool.count) break;
        pool.task(pool.context, i);
    }
    inside_job = 0;
}

static void *worker_main(void *unused) {
    (void)unused;
    unsigned long seen = 0;
    for (;;) {
        unsigned long now;
        int spins = 0;
        while ((now = atomic_load_explicit(&pool.generation, memory_order_acquire)) == seen) {
            if (++spins < SPIN_LIMIT) { cpu_relax(); continue; }
            pthread_mutex_lock(&pool.lock);
            atomic_fetch_add(&pool.sleepers, 1);
            while ((now = atomic_load(&pool.generation)) == seen) pthread_cond_wait(&pool.wake, &pool.lock);
            atomic_fetch_sub(&pool.sleepers, 1);
            pthread_mutex_unlock(&pool.lock);
            break;
        }
        seen = now;
        run_items();
        atomic_fetch_add_explicit(&pool.acknowledged, 1, memory_order_release);
    }
    return 0;
}

static void start_pool(void) {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int wanted = cpus > 1 ? (int)(cpus - 1) : 0;
    if (wanted > MAX_WORKERS) wanted = MAX_WORKERS;
    int started = 0;
    for (int i = 0; i < wanted; i++) {
        pthread_t thread;
        pthread_attr_t attributes;
        pthread_attr_init(&attributes);
        pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&thread, &attributes, worker_main, 0) == 0) started++;
        pthread_attr_destroy(&attributes);
    }
    pool.workers = started;
}

int ck_pool_in_job(void) { return inside_job; }

void ck_spin_lock(int *lock) {
    for (;;) {
        if (!__atomic_exchange_n(lock, 1, __ATOMIC_ACQUIRE)) return;
        int spins = 0;
        while (__atomic_load_n(lock, __ATOMIC_RELAXED)) {
            if (++spins < 4096) cpu_relax();
            else { sched_yield(); spins = 0; }
        }
    }
}

void ck_spin_unlock(int *lock) { __atomic_store_n(lock, 0, __ATOMIC_RELEASE); }

int ck_pool_threads(void) {
    pthread_once(&pool_once, start_pool);
    return pool.workers + 1;
}

void ck_pool_run(long count, ck_pool_task task, void *context) {
    if (count <= 0) return;
    pthread_once(&pool_once, start_pool);
    if (count == 1 || pool.workers == 0 || inside_job || atomic_flag_test_and_set_explicit(&pool.busy, memory_order_acquire)) {
        for (long i = 0; i < count; i++) task(context, i);
        return;
    }
    pool.task = task;
    pool.context = context;
    pool.count = count;
    atomic_store_explicit(&pool.next, 0, memory_order_relaxed);
    atomic_store_explicit(&pool.acknowledged, 0, memory_order_relaxed);
    // Sequentially consistent, paired with the sleepers count: a worker going to sleep either sees
    // the new generation or is seen as a sleeper and woken.
    atomic_fetch_add(&pool.generation, 1);
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.lock);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.lock);
    }
    run_items();
    while (atomic_load_explicit(&pool.acknowledged, memory_order_acquire) < pool.workers) cpu_relax();
    atomic_flag_clear_explicit(&pool.busy, memory_order_release);
}
