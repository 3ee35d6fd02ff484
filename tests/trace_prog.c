/* A program for tests/trace_replay.sh to record with libheaplab-trace.so:
 * malloc, calloc, realloc, free, posix_memalign and aligned_alloc from two
 * threads, half of the frees cross-thread (the worker frees what main
 * made, main frees what the worker made), in a fixed order. It prints
 * the operations it made, per kind, as one JSON object, for the test to
 * compare with what the trace holds. Built without sanitizers: it runs
 * under LD_PRELOAD. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 2000

static void *from_main[N], *from_worker[N];
static unsigned long mallocs, callocs, reallocs, frees, memaligns;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void count(unsigned long *c) {
  pthread_mutex_lock(&lock);
  (*c)++;
  pthread_mutex_unlock(&lock);
}

static void *worker(void *arg) {
  (void)arg;
  for (int i = 0; i < N; i++) {   /* cross-thread: main made these */
    free(from_main[i]);
    count(&frees);
  }
  for (int i = 0; i < N; i++) {
    void *p = (i % 3) ? malloc((size_t)(i % 700) + 1) : calloc((size_t)(i % 50) + 1, 8);
    count((i % 3) ? &mallocs : &callocs);
    memset(p, 1, 1);
    if (i % 5 == 0) {
      p = realloc(p, (size_t)(i % 4000) + 16);
      count(&reallocs);
    }
    from_worker[i] = p;
  }
  return NULL;
}

int main(void) {
  for (int i = 0; i < N; i++) {
    void *p;
    if (i % 7 == 0) {
      if (posix_memalign(&p, 64, (size_t)i + 8) != 0) return 1;
    } else if (i % 11 == 0) {
      p = aligned_alloc(32, 64);
    } else {
      p = malloc((size_t)(i * 13 % 1000) + 1);
    }
    count(i % 7 == 0 || i % 11 == 0 ? &memaligns : &mallocs);
    if (i % 4 == 1) {
      p = realloc(p, (size_t)(i * 29 % 3000) + 1);
      count(&reallocs);
    }
    from_main[i] = p;
  }
  for (int i = 0; i < 500; i++) {   /* same-thread churn, LIFO */
    void *a = malloc(32), *b = malloc(100);
    free(b);
    free(a);
    mallocs += 2;
    frees += 2;
  }
  pthread_t t;
  if (pthread_create(&t, NULL, worker, NULL) != 0) return 1;
  pthread_join(t, NULL);
  for (int i = 0; i < N; i++) {   /* cross-thread: the worker made these */
    free(from_worker[i]);
    frees++;
  }
  printf("{\"malloc\": %lu, \"calloc\": %lu, \"realloc\": %lu, \"free\": %lu, \"memalign\": %lu, "
         "\"cross_thread_frees\": %d}\n", mallocs, callocs, reallocs, frees, memaligns, 2 * N);
  return 0;
}
