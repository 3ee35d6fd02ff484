/* A host for tests/preload_stats.sh: a known heap at exit under
 * libheaplab-malloc.so. The main thread keeps 1000 blocks of 24 bytes (the
 * 32-byte class in `modern`) and 10 of 300; each of 3 threads allocates
 * 200 blocks of 100 bytes and keeps 50 of them when it exits, so that
 * tcache=heap leaves abandoned heaps with live blocks. Not linked with
 * heaplab: the library is preloaded. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 3
static void *kept[THREADS][50];

static void *worker(void *arg) {
  int id = (int)(size_t)arg;
  void *all[200];
  for (int i = 0; i < 200; i++) {
    all[i] = malloc(100);
    if (all[i] == NULL) return (void *)1;
    memset(all[i], id, 100);
  }
  for (int i = 0; i < 200; i++) {
    if (i < 50) kept[id][i] = all[i];
    else free(all[i]);
  }
  return NULL;
}

int main(void) {
  static void *small[1000], *large[10];
  for (int i = 0; i < 1000; i++)
    if ((small[i] = malloc(24)) == NULL) return 1;
  for (int i = 0; i < 10; i++)
    if ((large[i] = malloc(300)) == NULL) return 1;
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++)
    if (pthread_create(&t[i], NULL, worker, (void *)(size_t)i) != 0) return 1;
  for (int i = 0; i < THREADS; i++) {
    void *r;
    pthread_join(t[i], &r);
    if (r != NULL) return 1;
  }
  puts("preload_stats_prog: done");
  return 0;   /* the blocks stay live: the statistics at exit count them */
}
