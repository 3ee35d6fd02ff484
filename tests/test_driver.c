/* The heaplab driver and heaplab-micro as programs: exit status, the one
 * JSON object on stdout and its fields, and every bad-input path (exit 2 with
 * a message naming the option, the value and what is accepted).
 *
 * usage: test_driver PATH/heaplab PATH/heaplab-micro
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *heaplab, *micro;

typedef struct out {
  int status;       /* exit status, or 128 + signal */
  char *out, *err;
} out_t;

static char *slurp(const char *path) {
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap);
  size_t k;
  while ((k = fread(buf + n, 1, cap - n - 1, f)) > 0) {
    n += k;
    if (cap - n < 4096) buf = realloc(buf, cap *= 2);
  }
  buf[n] = '\0';
  fclose(f);
  return buf;
}

/* Runs prog with args (NULL-terminated) and extra environment entries
 * (NULL-terminated, "K=V"); the HEAPLAB_* variables of this process are not
 * passed on, so that the test sees only what it sets, nor those env sets. */
static out_t run_to(const char *prog, const char *const *args, const char *const *env,
                    const char *stdout_path);
static out_t run(const char *prog, const char *const *args, const char *const *env) {
  return run_to(prog, args, env, NULL);
}

/* run, with stdout on stdout_path (/dev/full) instead when not NULL */
static out_t run_to(const char *prog, const char *const *args, const char *const *env,
                    const char *stdout_path) {
  char outp[] = "/tmp/hl_drv_out_XXXXXX", errp[] = "/tmp/hl_drv_err_XXXXXX";
  int fo = mkstemp(outp), fe = mkstemp(errp);
  assert_true(fo >= 0 && fe >= 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    dup2(fo, 1);
    dup2(fe, 2);
    if (stdout_path) {
      int fd = open(stdout_path, O_WRONLY);
      if (fd < 0 || dup2(fd, 1) != 1) _exit(126);
    }
    char *argv[64];
    int n = 0;
    argv[n++] = (char *)prog;
    for (const char *const *a = args; a && *a; a++) argv[n++] = (char *)*a;
    argv[n] = NULL;
    extern char **environ;
    char *envp[256];
    int m = 0;
    for (char **e = environ; *e && m < 200; e++) {
      bool replaced = false;
      for (const char *const *x = env; x && *x; x++) {
        size_t k = strcspn(*x, "=");
        if (strncmp(*e, *x, k + 1) == 0) replaced = true;
      }
      if (strncmp(*e, "HEAPLAB_", 8) != 0 && !replaced) envp[m++] = *e;
    }
    for (const char *const *e = env; e && *e; e++) envp[m++] = (char *)*e;
    envp[m] = NULL;
    execve(prog, argv, envp);
    _exit(127);
  }
  int st;
  waitpid(pid, &st, 0);
  close(fo);
  close(fe);
  out_t o = {WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), slurp(outp), slurp(errp)};
  unlink(outp);
  unlink(errp);
  return o;
}

static void out_free(out_t *o) {
  free(o->out);
  free(o->err);
}

#define HAS(s, sub)                                                   \
  do {                                                                \
    if (!strstr((s), (sub))) fail_msg("'%s' not found in: %s", (sub), (s)); \
  } while (0)

/* Exit 2, nothing on stdout, and each of subs on stderr. */
static void expect_bad(const char *const *args, const char *const *env, const char *const *subs) {
  out_t o = run(heaplab, args, env);
  if (o.status != 2) fail_msg("exit %d, expected 2; stderr: %s", o.status, o.err);
  assert_string_equal(o.out, "");
  for (const char *const *s = subs; *s; s++) HAS(o.err, *s);
  out_free(&o);
}

static json_object *get(json_object *o, const char *path) {
  /* dotted path: "latency_ns.p50" */
  char buf[128];
  snprintf(buf, sizeof buf, "%s", path);
  json_object *cur = o;
  for (char *tok = strtok(buf, "."); tok; tok = strtok(NULL, ".")) {
    json_object *next;
    if (!json_object_object_get_ex(cur, tok, &next)) fail_msg("field '%s' missing", path);
    cur = next;
  }
  return cur;
}

static void test_help_and_list(void **s) {
  (void)s;
  const char *const a1[] = {"--help", NULL};
  out_t o = run(heaplab, a1, NULL);
  assert_int_equal(o.status, 0);
  HAS(o.out, "heaplab run");
  out_free(&o);
  const char *const a2[] = {"run", "--help", NULL};
  o = run(heaplab, a2, NULL);
  assert_int_equal(o.status, 0);
  HAS(o.out, "malloc-churn");
  HAS(o.out, "--switch-interval-us");
  out_free(&o);
  const char *const a3[] = {"list", NULL};
  o = run(heaplab, a3, NULL);
  assert_int_equal(o.status, 0);
  HAS(o.out, "malloc-churn");
  HAS(o.out, "gil, atomic, biased");
  HAS(o.out, "HEAPLAB");
  out_free(&o);
  const char *const a4[] = {NULL};
  o = run(heaplab, a4, NULL);
  assert_int_equal(o.status, 2);
  HAS(o.err, "usage");
  out_free(&o);
}

static void test_run_prints_one_json_object(void **s) {
  (void)s;
  const char *const args[] = {"run", "malloc-churn", "--alloc=system", "--threads=2", NULL};
  out_t o = run(heaplab, args, NULL);
  if (o.status != 0) fail_msg("exit %d: %s", o.status, o.err);
  HAS(o.err, "malloc-churn");     /* the human summary */
  HAS(o.err, "ops");
  /* exactly one object, then a newline, nothing else */
  size_t len = strlen(o.out);
  assert_true(len > 2 && o.out[len - 1] == '\n');
  assert_null(strchr(o.out, '\n') == o.out + len - 1 ? NULL : "more than one line");
  json_object *r = json_tokener_parse(o.out);
  assert_non_null(r);
  assert_string_equal(json_object_get_string(get(r, "workload")), "malloc-churn");
  assert_string_equal(json_object_get_string(get(r, "config.alloc")), "system");
  assert_int_equal(json_object_get_int(get(r, "config.threads")), 2);
  assert_string_equal(json_object_get_string(get(r, "config.rc")), "gil");
  assert_string_equal(json_object_get_string(get(r, "config.threshold")), "700,10,10");
  assert_int_equal(json_object_get_int(get(r, "config.switch-interval-us")), 5000);
  assert_string_equal(json_object_get_string(get(r, "config_origin.alloc")), "flag");
  assert_true(strlen(json_object_get_string(get(r, "machine.cpu"))) > 0);
  assert_true(json_object_get_int(get(r, "machine.cores")) >= 1);
  assert_true(json_object_get_int(get(r, "machine.numa_nodes")) >= 1);
  assert_true(strlen(json_object_get_string(get(r, "machine.kernel"))) > 0);
  const char *commit = json_object_get_string(get(r, "commit"));
  assert_true(strlen(commit) == 40 || strcmp(commit, "unknown") == 0);
  assert_int_equal(json_object_get_int(get(r, "threads")), 2);
  assert_int_equal(json_object_get_int64(get(r, "ops")), 2 * 2000000);
  assert_true(json_object_get_double(get(r, "wall_s")) > 0);
  assert_true(json_object_get_double(get(r, "ops_per_s")) > 0);
  assert_true(json_object_get_int64(get(r, "peak_rss_bytes")) > 0);
  assert_int_equal(strlen(json_object_get_string(get(r, "checksum"))), 16);
  int64_t n = json_object_get_int64(get(r, "latency_ns.count"));
  assert_true(n > 0);
  int64_t p50 = json_object_get_int64(get(r, "latency_ns.p50"));
  int64_t p99 = json_object_get_int64(get(r, "latency_ns.p99"));
  int64_t mx = json_object_get_int64(get(r, "latency_ns.max"));
  assert_true(p50 > 0 && p50 <= p99 && p99 <= mx);
  assert_true(json_object_get_int64(get(r, "alloc.rss_before_bytes")) > 0);
  /* an allocator workload runs no GIL and starts no thread of its own */
  assert_false(json_object_object_get_ex(r, "gil", NULL));
  assert_false(json_object_object_get_ex(r, "workers", NULL));
  json_object_put(r);
  out_free(&o);
}

/* convoy: the I/O thread's response times and the GIL's figures. Behaviour
 * only: how long a response takes depends on the machine. */
static void test_convoy(void **s) {
  (void)s;
  const char *const args[] = {"run", "convoy", "--duration-s=0.3", "--switch-interval-us=500",
                              "--threads=2", NULL};
  out_t o = run(heaplab, args, NULL);
  if (o.status != 0) fail_msg("exit %d: %s", o.status, o.err);
  HAS(o.err, "gil ");                  /* the summary's GIL line */
  HAS(o.err, "switches");
  json_object *r = json_tokener_parse(o.out);
  assert_non_null(r);
  assert_string_equal(json_object_get_string(get(r, "workload")), "convoy");
  assert_string_equal(json_object_get_string(get(r, "config.rc")), "gil");
  assert_int_equal(json_object_get_int(get(r, "config.switch-interval-us")), 500);
  assert_int_equal(json_object_get_int(get(r, "threads")), 2);
  assert_int_equal(json_object_get_int(get(r, "workers")), 3);   /* + the I/O thread */
  int64_t ops = json_object_get_int64(get(r, "ops"));
  assert_true(ops >= 1);
  /* one response time per I/O task */
  assert_int_equal(json_object_get_int64(get(r, "latency_ns.count")), ops);
  assert_int_equal(json_object_get_int(get(r, "latency_sample_every")), 1);
  /* every worker takes the GIL after the start barrier: at least one switch */
  assert_true(json_object_get_int64(get(r, "gil.switches")) >= 1);
  assert_true(json_object_get_int64(get(r, "gil.forced_switches")) <=
              json_object_get_int64(get(r, "gil.switches")));
  /* read while no worker held it: every take has its release */
  assert_int_equal(json_object_get_int64(get(r, "gil.wait_ns.count")),
                   json_object_get_int64(get(r, "gil.hold_ns.count")));
  int64_t p50 = json_object_get_int64(get(r, "gil.hold_ns.p50"));
  assert_true(p50 > 0 && p50 <= json_object_get_int64(get(r, "gil.hold_ns.max")));
  /* the workload's own figures, and no hand-off under the default policy */
  assert_string_equal(json_object_get_string(get(r, "config.gil")), "classic");
  assert_int_equal(json_object_get_int64(get(r, "gil.handoffs")), 0);
  assert_int_equal(json_object_get_int64(get(r, "extra.wait_ns.count")), ops);
  assert_true(json_object_get_int64(get(r, "extra.cpu_steps")) > 0);
  assert_true(json_object_get_double(get(r, "extra.cpu_steps_per_s")) > 0);
  double share = json_object_get_double(get(r, "extra.cpu_yield_share"));
  assert_true(share >= 0 && share <= 1);
  json_object_put(r);
  out_free(&o);
  /* --gil=handoff: the I/O thread, back from each sleep, is handed the GIL;
   * a task of the I/O thread's whose wake-up found the GIL free needs none,
   * so at most one hand-off per task, plus one per worker (the CPU thread
   * and the I/O thread) retaking the GIL after the start barrier, a wake-up
   * too. How many wake-ups find it held depends on the scheduler (under
   * ASan on a loaded machine, possibly none): that hand-offs happen is
   * test_gil's (a holder that spins). */
  const char *const ah[] = {"run", "convoy", "--duration-s=0.3", "--switch-interval-us=500",
                            "--gil=handoff", NULL};
  o = run(heaplab, ah, NULL);
  if (o.status != 0) fail_msg("exit %d: %s", o.status, o.err);
  HAS(o.err, "handoff");
  r = json_tokener_parse(o.out);
  assert_non_null(r);
  assert_string_equal(json_object_get_string(get(r, "config.gil")), "handoff");
  ops = json_object_get_int64(get(r, "ops"));
  int64_t handoffs = json_object_get_int64(get(r, "gil.handoffs"));
  if (!(ops >= 1 && handoffs >= 0 && handoffs <= ops + 2))
    fail_msg("ops %lld, handoffs %lld", (long long)ops, (long long)handoffs);
  assert_true(json_object_get_int64(get(r, "gil.drop_requests")) >= handoffs);
  json_object_put(r);
  out_free(&o);
  /* without a GIL, --gil is noted as having no effect, as --switch-interval-us */
  const char *const an[] = {"run", "convoy", "--duration-s=0.1", "--rc=atomic", "--gil=handoff",
                            NULL};
  o = run(heaplab, an, NULL);
  if (o.status != 0) fail_msg("exit %d: %s", o.status, o.err);
  HAS(o.err, "note: gil=handoff (flag) has no effect");
  out_free(&o);
  /* scale: a fixed number of tasks */
  const char *const a2[] = {"run", "convoy", "--switch-interval-us=200", "--scale=1", NULL};
  o = run(heaplab, a2, NULL);
  if (o.status != 0) fail_msg("exit %d: %s", o.status, o.err);
  r = json_tokener_parse(o.out);
  assert_int_equal(json_object_get_int64(get(r, "ops")), 200);
  assert_int_equal(json_object_get_int(get(r, "workers")), 2);
  json_object_put(r);
  out_free(&o);
}

/* prefork: the master forks --workers processes; each serves its share of
 * the requests and reports, and the master adds them up. What is checked is
 * behaviour, never a measured amount of memory: the workers ran and
 * exited 0, their counts add up to ops, each sampled /proc at every 5 % of
 * its run, --prefork-gc did what it says in the workers (off: no
 * collection; freeze: a frozen heap; freeze-immortal: an immortal one) and
 * changed nothing in what the requests computed (the checksum). */
static json_object *prefork_run(const char *mode, const char *checksum_of) {
  char opt[64];
  snprintf(opt, sizeof opt, "--prefork-gc=%s", mode);
  const char *const args[] = {"run", "prefork", "--workers=2", "--scale=1", opt, NULL};
  out_t o = run(heaplab, args, NULL);
  if (o.status != 0) fail_msg("prefork %s: exit %d: %s", mode, o.status, o.err);
  json_object *r = json_tokener_parse(o.out);
  assert_non_null(r);
  out_free(&o);
  assert_string_equal(json_object_get_string(get(r, "config.prefork-gc")), mode);
  assert_string_equal(json_object_get_string(get(r, "extra.prefork_gc")), mode);
  assert_int_equal(json_object_get_int(get(r, "extra.workers")), 2);
  assert_int_equal(json_object_get_int64(get(r, "ops")), 2 * 10000);
  json_object *ws = get(r, "extra.worker");
  assert_int_equal(json_object_array_length(ws), 2);
  int64_t pages = json_object_get_int64(get(r, "extra.heap_pages"));
  int64_t gc_pages = json_object_get_int64(get(r, "extra.heap_gc_pages"));
  assert_true(pages > 0 && gc_pages > 0 && gc_pages <= pages);
  assert_int_equal(json_object_get_int64(get(r, "extra.heap_objects")), 50000 * 9 + 68);
  int64_t sum = 0;
  for (size_t k = 0; k < 2; k++) {
    json_object *w = json_object_array_get_idx(ws, k);
    assert_int_equal(json_object_get_int(get(w, "exit_status")), 0);
    int64_t req = json_object_get_int64(get(w, "requests"));
    assert_int_equal(req, 10000);
    sum += req;
    /* one request in 8 timed */
    assert_int_equal(json_object_get_int64(get(w, "latency_ns.count")), req / 8);
    /* samples at 0, 5, ..., 100 % of the run, the requests in order */
    json_object *ss = get(w, "samples");
    assert_int_equal(json_object_array_length(ss), 21);
    int64_t prev = -1;
    for (size_t i = 0; i < 21; i++) {
      json_object *x = json_object_array_get_idx(ss, i);
      int64_t n = json_object_get_int64(get(x, "requests"));
      assert_true(n >= prev && n >= (int64_t)(req * i / 20));
      prev = n;
      assert_true(json_object_get_int64(get(x, "rss_kib")) > 0);
      int64_t copied = json_object_get_int64(get(x, "heap_pages_copied"));
      assert_true(copied >= json_object_get_int64(get(x, "heap_gc_pages_copied")) && copied <= pages);
    }
    assert_int_equal(json_object_get_int64(get(json_object_array_get_idx(ss, 0), "requests")), 0);
    assert_int_equal(prev, req);
    json_object *cs = get(w, "collections");
    int64_t young = json_object_get_int64(json_object_array_get_idx(cs, 0));
    if (strcmp(mode, "off") == 0) assert_int_equal(young, 0);   /* gc.disable() carried over */
    else assert_true(young > 0);    /* 11 containers a request: generation 0 fills */
  }
  assert_int_equal(sum, json_object_get_int64(get(r, "ops")));
  bool frozen = strncmp(mode, "freeze", 6) == 0;
  int64_t nfrozen = json_object_get_int64(get(r, "extra.frozen"));
  if (frozen) assert_true(nfrozen > 50000);
  else assert_int_equal(nfrozen, -1);
  int64_t imm = json_object_get_int64(get(r, "extra.immortalized"));
  if (strcmp(mode, "freeze-immortal") == 0) assert_true(imm > 50000 * 4);
  else assert_int_equal(imm, -1);
  if (checksum_of)
    assert_string_equal(json_object_get_string(get(r, "checksum")), checksum_of);
  return r;
}

static void test_prefork(void **s) {
  (void)s;
  json_object *on = prefork_run("on", NULL);
  const char *sum = json_object_get_string(get(on, "checksum"));
  const char *modes[] = {"off", "freeze", "freeze-immortal"};
  for (size_t i = 0; i < sizeof modes / sizeof *modes; i++) json_object_put(prefork_run(modes[i], sum));
  json_object_put(on);
  /* what a fork cannot do, and values out of range */
  expect_bad((const char *const[]){"run", "prefork", "--rc=atomic", NULL}, NULL,
             (const char *const[]){"option 'rc'", "'atomic'", "prefork", "accepted: gil", NULL});
  expect_bad((const char *const[]){"run", "prefork", "--threads=2", NULL}, NULL,
             (const char *const[]){"option 'threads'", "'2'", "--workers", "accepted: 1", NULL});
  expect_bad((const char *const[]){"run", "prefork", "--gc=none", NULL}, NULL,
             (const char *const[]){"option 'prefork-gc'", "--gc=none", "accepted with --gc=none: off",
                                   NULL});
  expect_bad((const char *const[]){"run", "prefork", "--prefork-gc=sometimes", NULL}, NULL,
             (const char *const[]){"prefork-gc", "sometimes", "on, off, freeze, freeze-immortal",
                                   NULL});
  expect_bad((const char *const[]){"run", "prefork", "--workers=0", NULL}, NULL,
             (const char *const[]){"workers", "'0'", "1..64", NULL});
  expect_bad((const char *const[]){"run", "prefork", "--touch-pct=101", NULL}, NULL,
             (const char *const[]){"touch-pct", "101", "1..100", NULL});
  /* --gc=none with the collector off runs: nothing to disable */
  const char *const a[] = {"run", "prefork", "--gc=none", "--prefork-gc=off", "--duration-s=0.1",
                           NULL};
  out_t o = run(heaplab, a, NULL);
  if (o.status != 0) fail_msg("prefork --gc=none: exit %d: %s", o.status, o.err);
  out_free(&o);
}

static void test_same_seed_same_checksum(void **s) {
  (void)s;
  const char *const a[] = {"run", "malloc-churn", "--alloc=system", "--seed=7", NULL};
  const char *const b[] = {"run", "malloc-churn", "--alloc=system", "--seed=8", NULL};
  out_t o1 = run(heaplab, a, NULL), o2 = run(heaplab, a, NULL), o3 = run(heaplab, b, NULL);
  assert_int_equal(o1.status, 0);
  assert_int_equal(o3.status, 0);
  json_object *r1 = json_tokener_parse(o1.out), *r2 = json_tokener_parse(o2.out),
              *r3 = json_tokener_parse(o3.out);
  assert_string_equal(json_object_get_string(get(r1, "checksum")),
                      json_object_get_string(get(r2, "checksum")));
  assert_string_not_equal(json_object_get_string(get(r1, "checksum")),
                          json_object_get_string(get(r3, "checksum")));
  json_object_put(r1);
  json_object_put(r2);
  json_object_put(r3);
  out_free(&o1);
  out_free(&o2);
  out_free(&o3);
}

/* --sizes and --size-dist reach the workloads and the result: the
 * checksum hashes the sizes drawn, so it changes with them and not with the
 * allocator */
static void test_sizes_options(void **s) {
  (void)s;
  const char *const a[] = {"run", "malloc-churn", "--alloc=system", "--sizes=8..65536",
                           "--size-dist=power-law", "--duration-s=0", "--scale=1", NULL};
  const char *const b[] = {"run", "malloc-churn", "--alloc=pool", "--tcache=heap",
                           "--sizes=8..65536", "--size-dist=power-law", NULL};
  const char *const d[] = {"run", "malloc-churn", "--alloc=system", NULL};
  out_t o1 = run(heaplab, a, NULL), o2 = run(heaplab, b, NULL), o3 = run(heaplab, d, NULL);
  assert_int_equal(o1.status, 0);
  assert_int_equal(o2.status, 0);
  assert_int_equal(o3.status, 0);
  json_object *r1 = json_tokener_parse(o1.out), *r2 = json_tokener_parse(o2.out),
              *r3 = json_tokener_parse(o3.out);
  assert_string_equal(json_object_get_string(get(r1, "config.sizes")), "8..65536");
  assert_string_equal(json_object_get_string(get(r1, "config.size-dist")), "power-law");
  assert_string_equal(json_object_get_string(get(r3, "config.sizes")), "auto");
  assert_string_equal(json_object_get_string(get(r1, "checksum")),
                      json_object_get_string(get(r2, "checksum")));
  assert_string_not_equal(json_object_get_string(get(r1, "checksum")),
                          json_object_get_string(get(r3, "checksum")));
  json_object_put(r1);
  json_object_put(r2);
  json_object_put(r3);
  out_free(&o1);
  out_free(&o2);
  out_free(&o3);
}

static void test_env_and_config_file_reach_the_result(void **s) {
  (void)s;
  char path[] = "/tmp/hl_drv_cfg_XXXXXX";
  int fd = mkstemp(path);
  const char *text = "alloc = system\nseed = 11\nthreads = 1\n";
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  char cfg[64];
  snprintf(cfg, sizeof cfg, "--config=%s", path);
  const char *const args[] = {"run", "malloc-churn", cfg, "--threads=2", NULL};
  const char *const env[] = {"HEAPLAB_SEED=12", "HEAPLAB_THREADS=3", NULL};
  out_t o = run(heaplab, args, env);
  if (o.status != 0) fail_msg("exit %d: %s", o.status, o.err);
  json_object *r = json_tokener_parse(o.out);
  assert_int_equal(json_object_get_int(get(r, "config.seed")), 12);     /* env > file */
  assert_int_equal(json_object_get_int(get(r, "config.threads")), 2);   /* flag > env */
  assert_string_equal(json_object_get_string(get(r, "config.alloc")), "system"); /* file */
  assert_string_equal(json_object_get_string(get(r, "config_origin.seed")), "env HEAPLAB_SEED");
  json_object_put(r);
  out_free(&o);
  unlink(path);
}

static void test_trace_file(void **s) {
  (void)s;
  char path[] = "/tmp/hl_drv_trace_XXXXXX";
  close(mkstemp(path));
  char tr[64];
  snprintf(tr, sizeof tr, "--trace=%s", path);
  const char *const args[] = {"run", "malloc-churn", "--alloc=system", tr, NULL};
  out_t o = run(heaplab, args, NULL);
  assert_int_equal(o.status, 0);
  char *t = slurp(path);
  HAS(t, "\"event\":\"start\"");
  HAS(t, "\"event\":\"end\"");
  HAS(t, "rss_bytes");
  free(t);
  out_free(&o);
  /* an object workload under the GIL with two threads: every collection
   * starts and ends in the trace, and the GIL's switches are there */
  const char *const args2[] = {"run", "cycles", "--threads=2", "--duration-s=0.3",
                               "--switch-interval-us=100", tr, NULL};
  o = run(heaplab, args2, NULL);
  assert_int_equal(o.status, 0);
  t = slurp(path);
  size_t starts = 0, ends = 0, switches = 0;
  for (const char *p = t; (p = strstr(p, "\"event\":\"")); p++) {
#define IS(ev) (strncmp(p, "\"event\":\"" ev "\"", sizeof("\"event\":\"" ev "\"") - 1) == 0)
    starts += IS("gc_start");
    ends += IS("gc_end");
    switches += IS("gil_switch");
#undef IS
  }
  assert_true(starts > 0);
  assert_int_equal(starts, ends);
  assert_true(switches > 0);
  HAS(t, "\"collected\":");
  free(t);
  out_free(&o);
  unlink(path);
}

static void test_bad_input_exits_2(void **s) {
  (void)s;
  {
    const char *const a[] = {"run", "malloc-churn", "--rc=bogus", NULL};
    const char *const m[] = {"'rc'", "bogus", "gil, atomic, biased", NULL};
    expect_bad(a, NULL, m);
  }
  {
    const char *const a[] = {"run", "convoy", "--gil=fifo", NULL};
    const char *const m[] = {"'gil'", "fifo", "classic, handoff", NULL};
    expect_bad(a, NULL, m);
  }
  {
    const char *const a[] = {"run", "alloc-larson", "--sizes=8..131072", NULL};
    const char *const m[] = {"up to 65536 B", "--sizes=MIN..MAX", NULL};
    expect_bad(a, NULL, m);
  }
  {
    const char *const a[] = {"run", "malloc-churn", "--sizes=512..8", NULL};
    const char *const m[] = {"'sizes'", "512..8", "MIN..MAX", NULL};
    expect_bad(a, NULL, m);
  }
  {
    const char *const a[] = {"run", "alloc-xthread", "--size-dist=histogram", NULL};
    const char *const m[] = {"size-dist=histogram", "--size-hist=FILE", NULL};
    expect_bad(a, NULL, m);
  }
  {
    const char *const a[] = {"run", "alloc-random", "--size-dist=histogram",
                             "--size-hist=/nonexistent/sizes.txt", NULL};
    const char *const m[] = {"/nonexistent/sizes.txt", "cannot open", NULL};
    expect_bad(a, NULL, m);
  }
  {
    const char *const a[] = {"run", "no-such-workload", NULL};
    const char *const m[] = {"unknown workload 'no-such-workload'", "malloc-churn", NULL};
    expect_bad(a, NULL, m);
  }
  {
    const char *const a[] = {"run", "malloc-churn", "--alloc=system", "--colour=blue", NULL};
    const char *const m[] = {"unknown option 'colour'", NULL};
    expect_bad(a, NULL, m);
  }
  {
    const char *const a[] = {"run", "malloc-churn", "--alloc=system", "--threads=many", NULL};
    const char *const m[] = {"'threads'", "many", "1..1024", NULL};
    expect_bad(a, NULL, m);
  }
  {
    const char *const a[] = {"run", "malloc-churn", "--alloc=system", NULL};
    const char *const e[] = {"HEAPLAB_SEED=-1", NULL};
    const char *const m[] = {"'seed'", "HEAPLAB_SEED", NULL};
    expect_bad(a, e, m);
  }
  {
    /* the concurrent collector needs a refcount mode without a GIL */
    const char *const a[] = {"run", "cycles", "--gc=concurrent", NULL};
    const char *const m[] = {"impossible combination", "gc=concurrent", "rc=gil", "atomic", NULL};
    expect_bad(a, NULL, m);
  }
  {
    /* ... and one collector thread is built */
    const char *const a[] = {"run", "cycles", "--gc=concurrent", "--rc=atomic", "--gc-threads=2", NULL};
    const char *const m[] = {"gc-threads=2", "accepted: gc-threads=1", NULL};
    expect_bad(a, NULL, m);
  }
  {
    /* a custom geometry that breaks an invariant: caught before the run */
    const char *const a[] = {"run", "malloc-churn", "--geometry=12,240,4096,262144", NULL};
    const char *const m[] = {"'geometry'", "12,240,4096,262144", "power of two", NULL};
    expect_bad(a, NULL, m);
  }
  {
    /* pool colours need pools of a radix grain; classic's are 4 KiB */
    const char *const a[] = {"run", "malloc-churn", "--geometry=classic", "--pool-colour=on", NULL};
    const char *const m[] = {"'pool-colour'", "geometry=classic", "16 KiB", "accepted", "off",
                             NULL};
    expect_bad(a, NULL, m);
  }
  {
    /* huge-page arenas need arenas of whole huge pages (or a kernel with
     * none: then the message says so, and accepts off alike) */
    const char *const a[] = {"run", "malloc-churn", "--arena-huge=on", "--geometry=16,512,16K,1M",
                             NULL};
    const char *const m[] = {"'arena-huge'", "geometry=16,512,16384,1048576", "accepted", "off",
                             NULL};
    expect_bad(a, NULL, m);
  }
  {
    /* convoy runs --threads CPU-bound threads and one I/O thread */
    const char *const a[] = {"run", "convoy", "--threads=1024", NULL};
    const char *const m[] = {"'threads'", "1024", "convoy", "1..1023", NULL};
    expect_bad(a, NULL, m);
  }
  {
    const char *const a[] = {"run", "convoy", "--switch-interval-us=0", NULL};
    const char *const m[] = {"'switch-interval-us'", "'0'", NULL};
    expect_bad(a, NULL, m);
  }
  {
    const char *const a[] = {"run", "malloc-churn", "--alloc=system", "--tcache=heap", NULL};
    const char *const m[] = {"impossible combination", "tcache=heap", "alloc=system", NULL};
    expect_bad(a, NULL, m);
  }
  {
    const char *const a[] = {"run", "malloc-churn", "--alloc=system", "--config=/nonexistent.conf", NULL};
    const char *const m[] = {"'config'", "cannot open", NULL};
    expect_bad(a, NULL, m);
  }
  {
    const char *const a[] = {"frobnicate", NULL};
    const char *const m[] = {"unknown command 'frobnicate'", NULL};
    expect_bad(a, NULL, m);
  }
  {
    const char *const a[] = {"sweep", "no-such-grid.conf", NULL};
    const char *const m[] = {"no-such-grid.conf", "No such file or directory", NULL};
    expect_bad(a, NULL, m);
  }
}

/* The "gc" object of an object workload: its shape, and the relations its
 * figures must keep (never a duration). */
static void check_hist(json_object *h, int64_t count) {
  static const char *const f[] = {"count", "p50", "p90", "p99", "p999", "max", "total"};
  for (size_t i = 0; i < sizeof f / sizeof *f; i++) get(h, f[i]);
  assert_int_equal(json_object_get_int64(get(h, "count")), count);
  int64_t p50 = json_object_get_int64(get(h, "p50")), p99 = json_object_get_int64(get(h, "p99")),
          mx = json_object_get_int64(get(h, "max"));
  assert_true(p50 <= p99 && p99 <= mx);
  if (count > 0) assert_true(json_object_get_int64(get(h, "total")) >= mx);
}

static void test_gc_result(void **s) {
  (void)s;
  const char *const args[] = {"run", "cycles", "--duration-s=0.3", "--threshold=200,5,5", NULL};
  out_t o = run(heaplab, args, NULL);
  if (o.status != 0) fail_msg("exit %d: %s", o.status, o.err);
  HAS(o.err, "gc ");                   /* the summary's collector line */
  HAS(o.err, "MMU");
  json_object *r = json_tokener_parse(o.out);
  assert_non_null(r);
  assert_string_equal(json_object_get_string(get(r, "config.gc")), "stw");
  assert_string_equal(json_object_get_string(get(r, "config.gc-untrack")), "on");
  json_object *g = get(r, "gc");
  int64_t total = 0, collected = 0;
  json_object *per = get(g, "pause_ns_gen");
  assert_int_equal(json_object_array_length(get(g, "collections")), 3);
  assert_int_equal(json_object_array_length(per), 3);
  for (size_t i = 0; i < 3; i++) {
    int64_t n = json_object_get_int64(json_object_array_get_idx(get(g, "collections"), i));
    total += n;
    collected += json_object_get_int64(json_object_array_get_idx(get(g, "collected"), i));
    assert_int_equal(json_object_get_int64(json_object_array_get_idx(get(g, "uncollectable"), i)), 0);
    check_hist(json_object_array_get_idx(per, i), n);
    assert_true(json_object_get_double(json_object_array_get_idx(get(g, "ns_per_visited"), i)) >= 0);
  }
  /* cycles makes nothing but cyclic garbage: collections come and find it */
  assert_true(json_object_array_length(get(g, "collections")) == 3 && total > 0);
  assert_true(collected > 0);
  assert_true(json_object_get_int64(get(g, "visited")) >= collected);
  check_hist(get(g, "pause_ns"), total);
  for (const char *const *w = (const char *const[]){"1ms", "10ms", "100ms", NULL}; *w; w++) {
    char path[32];
    snprintf(path, sizeof path, "mmu.%s", *w);
    double m = json_object_get_double(get(g, path));
    assert_true(m >= 0.0 && m <= 1.0);
    /* each pause counted as its CPU time lies inside the pause itself */
    snprintf(path, sizeof path, "mmu_cpu.%s", *w);
    double c = json_object_get_double(get(g, path));
    assert_true(c >= m && c <= 1.0);
  }
  assert_true(json_object_get_boolean(get(g, "mmu_exact")));
  assert_false(json_object_object_get_ex(g, "stw_ns", NULL));   /* under the GIL: none */
  /* everything was collected in the end: the leak check passed */
  assert_int_equal(json_object_get_int64(get(r, "objects.leaked_objects")), 0);
  assert_true(json_object_get_int64(get(r, "objects.cyclic_garbage_objects")) > 0);
  json_object_put(r);
  out_free(&o);

  /* --gc=none: no "gc" object; the cyclic garbage leaks, all of it, and the
   * run says so instead of failing */
  const char *const a2[] = {"run", "cycles", "--duration-s=0.2", "--gc=none", NULL};
  /* a leak by design, counted by the runner: not LeakSanitizer's business */
  const char *const e2[] = {"ASAN_OPTIONS=detect_leaks=0 abort_on_error=1", NULL};
  o = run(heaplab, a2, e2);
  if (o.status != 0) fail_msg("exit %d: %s", o.status, o.err);
  HAS(o.err, "they leak");
  r = json_tokener_parse(o.out);
  assert_false(json_object_object_get_ex(r, "gc", NULL));
  int64_t leaked = json_object_get_int64(get(r, "objects.leaked_objects"));
  assert_true(leaked > 0);
  assert_int_equal(json_object_get_int64(get(r, "objects.cyclic_garbage_objects")), leaked);
  json_object_put(r);
  out_free(&o);

  /* long-lived times young and full collections beside CPython's
   * (bench/python/gc_long_lived.py): a young collection examines the list
   * of 2000 records (500 tuples, 500 Recs and their tags lists, 500 dicts
   * and their pos tuples, 500 lists) and 100 self-cycles (a Rec and its
   * tags list each): 1 + 3000 + 200 = 3201 objects, as CPython's does */
  const char *const a3[] = {"run", "long-lived", "--duration-s=0.2", NULL};
  o = run(heaplab, a3, NULL);
  if (o.status != 0) fail_msg("exit %d: %s", o.status, o.err);
  HAS(o.err, "gc timed");
  r = json_tokener_parse(o.out);
  g = get(r, "gc");
  assert_int_equal(json_object_get_int64(get(g, "young_objects")), 3201);
  assert_int_equal(json_object_get_int(get(g, "young_runs")), 20);
  assert_int_equal(json_object_get_int(get(g, "full_runs")), 3);
  assert_true(json_object_get_int64(get(g, "full_objects")) > 0);
  assert_true(json_object_get_double(get(g, "young_ns_per_obj")) > 0);
  assert_true(json_object_get_double(get(g, "full_ns_per_obj")) > 0);
  json_object_put(r);
  out_free(&o);

  /* gc-untrack's value is checked like any option's */
  const char *const a4[] = {"run", "gc-cpu", "--gc-untrack=sometimes", NULL};
  const char *const m4[] = {"'gc-untrack'", "sometimes", "off, on", NULL};
  expect_bad(a4, NULL, m4);
}

/* The collector workloads' own figures: cyclotron's live heap and ring shape
 * and trash-loop's full collections in "extra", the backlog in "gc", and
 * cyclotron's options checked like any option's. */
static void test_collector_workloads(void **s) {
  (void)s;
  const char *const a1[] = {"run", "cyclotron", "--duration-s=0.2", "--cycle-size=100",
                            "--cycle-payload=ints", "--live-heap-m=1", NULL};
  out_t o = run(heaplab, a1, NULL);
  if (o.status != 0) fail_msg("exit %d: %s", o.status, o.err);
  HAS(o.err, "extra ");   /* the summary's line */
  json_object *r = json_tokener_parse(o.out);
  assert_non_null(r);
  assert_int_equal(json_object_get_int(get(r, "config.cycle-size")), 100);
  assert_string_equal(json_object_get_string(get(r, "config.cycle-payload")), "ints");
  assert_int_equal(json_object_get_int(get(r, "config.live-heap-m")), 1);
  /* a million objects or just past it: the top list, 1000 chunks of 250 Recs */
  int64_t heap = json_object_get_int64(get(r, "extra.live_heap_objects"));
  assert_true(heap >= 1000000 && heap < 1000000 + 4);
  assert_int_equal(json_object_get_int64(get(r, "extra.ring_objects")), 1000);
  assert_int_equal(json_object_get_int64(get(r, "extra.ring_containers")), 200);
  assert_int_equal(json_object_get_int64(get(r, "extra.window_rings")), 21);   /* ceil(2048/100) */
  int64_t rings = json_object_get_int64(get(r, "extra.rings"));
  assert_int_equal(json_object_get_int64(get(r, "ops")), rings);
  /* every ring but the window's last 21 noted as garbage while it ran */
  int64_t noted = json_object_get_int64(get(r, "gc.backlog.noted"));
  assert_int_equal(noted, (rings > 21 ? rings - 21 : 0) * 200);
  assert_true(json_object_get_int64(get(r, "gc.backlog.max")) <= noted);
  assert_int_equal(json_object_get_int64(get(r, "objects.cyclic_garbage_objects")), rings * 1000);
  json_object_put(r);
  out_free(&o);

  const char *const a2[] = {"run", "trash-loop", "--scale=1", NULL};
  o = run(heaplab, a2, NULL);
  if (o.status != 0) fail_msg("exit %d: %s", o.status, o.err);
  r = json_tokener_parse(o.out);
  int64_t full = json_object_get_int64(get(r, "extra.full_collections"));
  json_object *at = get(r, "extra.full_at");
  /* one per collection of generation 2, each at a later iteration */
  assert_int_equal(full, json_object_get_int64(json_object_array_get_idx(get(r, "gc.collections"), 2)));
  assert_true(full > 0);
  assert_int_equal((int64_t)json_object_array_length(at), full < 64 ? full : 64);
  for (size_t i = 1; i < json_object_array_length(at); i++)
    assert_true(json_object_get_int64(json_object_array_get_idx(at, i)) >
                json_object_get_int64(json_object_array_get_idx(at, i - 1)));
  assert_int_equal(json_object_get_int64(get(r, "gc.backlog.noted")), 4 * 200000);
  json_object_put(r);
  out_free(&o);

  const char *const b1[] = {"run", "cyclotron", "--cycle-size=1", NULL};
  const char *const m1[] = {"'cycle-size'", "'1'", "2..100000", NULL};
  expect_bad(b1, NULL, m1);
  const char *const b2[] = {"run", "cyclotron", "--cycle-payload=floats", NULL};
  const char *const m2[] = {"'cycle-payload'", "floats", "none, ints", NULL};
  expect_bad(b2, NULL, m2);
  const char *const b3[] = {"run", "cyclotron", "--live-heap-m=-1", NULL};
  const char *const m3[] = {"'live-heap-m'", "0..1024", NULL};
  expect_bad(b3, NULL, m3);
  /* another workload ignores them, and says so */
  const char *const a4[] = {"run", "gc-collect", "--duration-s=0.05", "--cycle-size=100", NULL};
  o = run(heaplab, a4, NULL);
  if (o.status != 0) fail_msg("exit %d: %s", o.status, o.err);
  HAS(o.err, "cycle-size=100 (flag) has no effect");
  out_free(&o);
  /* the collector's own knob: used under --gc=incremental (no note), noted
   * as having no effect under stw */
  const char *const a5[] = {"run", "gc-collect", "--duration-s=0.05", "--gc=incremental",
                            "--pause-budget-us=250", NULL};
  o = run(heaplab, a5, NULL);
  if (o.status != 0) fail_msg("exit %d: %s", o.status, o.err);
  if (strstr(o.err, "has no effect")) fail_msg("a note under --gc=incremental: %s", o.err);
  r = json_tokener_parse(o.out);
  assert_non_null(r);
  assert_int_equal(json_object_get_int64(get(r, "config.pause-budget-us")), 250);
  json_object_put(r);
  out_free(&o);
  const char *const a6[] = {"run", "gc-collect", "--duration-s=0.05", "--gc=stw",
                            "--pause-budget-us=250", NULL};
  o = run(heaplab, a6, NULL);
  if (o.status != 0) fail_msg("exit %d: %s", o.status, o.err);
  HAS(o.err, "note: pause-budget-us=250 (flag) has no effect");
  out_free(&o);
}

/* The free-threaded modes: no "gil" object; "rc" (biased: merges, which
 * prodcons makes, one per pair its consumers drop) and "stw" (the runner's
 * stops of the world, with --stw-probe-ms). Behaviour only: how many stops
 * and merges depends on the machine. */
static void test_freethreaded_result(void **s) {
  (void)s;
  {
    const char *const args[] = {"run", "prodcons", "--rc=biased", "--gc=none", "--threads=2",
                                "--scale=1", "--stw-probe-ms=2", NULL};
    out_t o = run(heaplab, args, NULL);
    if (o.status != 0) fail_msg("exit %d: %s", o.status, o.err);
    HAS(o.err, "rc         biased");
    HAS(o.err, "stops of the world");
    json_object *r = json_tokener_parse(o.out);
    assert_non_null(r);
    assert_string_equal(json_object_get_string(get(r, "config.rc")), "biased");
    assert_false(json_object_object_get_ex(r, "gil", NULL));
    int64_t ops = json_object_get_int64(get(r, "ops"));
    assert_int_equal(ops, 1000000);   /* every pair made was consumed */
    int64_t queued = json_object_get_int64(get(r, "rc.merges_queued"));
    int64_t merged = json_object_get_int64(get(r, "rc.merges_done"));
    assert_true(queued >= 1 && queued <= ops);
    assert_true(merged >= queued);
    assert_true(json_object_object_get_ex(r, "stw", NULL));
    assert_int_equal(json_object_get_int64(get(r, "stw.stops")),
                     json_object_get_int64(get(r, "stw.time_to_stop_ns.count")));
    assert_int_equal(json_object_get_int64(get(r, "objects.leaked_objects")), 0);
    json_object_put(r);
    out_free(&o);
  }
  {
    const char *const args[] = {"run", "shared", "--rc=atomic", "--gc=none", "--threads=2",
                                "--duration-s=0.2", NULL};
    out_t o = run(heaplab, args, NULL);
    if (o.status != 0) fail_msg("exit %d: %s", o.status, o.err);
    json_object *r = json_tokener_parse(o.out);
    assert_non_null(r);
    /* atomic counts have no merges; reads of the shared dict are counted */
    assert_false(json_object_object_get_ex(get(r, "rc"), "merges_queued", NULL));
    assert_true(json_object_get_int64(get(r, "rc.reads_unlocked")) +
                    json_object_get_int64(get(r, "rc.reads_locked")) >= 1);
    assert_false(json_object_object_get_ex(r, "stw", NULL));   /* no probes asked */
    json_object_put(r);
    out_free(&o);
  }
  {
    /* the collector without a GIL: each collection stops the world, and
     * its cycles are found across threads */
    const char *const args[] = {"run", "cycles", "--rc=biased", "--gc=stw", "--threads=2",
                                "--duration-s=0.2", NULL};
    out_t o = run(heaplab, args, NULL);
    if (o.status != 0) fail_msg("exit %d: %s", o.status, o.err);
    HAS(o.err, "immortal=off");   /* the note on None and the small ints */
    json_object *r = json_tokener_parse(o.out);
    assert_non_null(r);
    int64_t collections = 0, collected = 0;
    for (int g = 0; g < 3; g++) {
      json_object *c = json_object_object_get(get(r, "gc"), "collections");
      json_object *f = json_object_object_get(get(r, "gc"), "collected");
      collections += json_object_get_int64(json_object_array_get_idx(c, (size_t)g));
      collected += json_object_get_int64(json_object_array_get_idx(f, (size_t)g));
    }
    assert_true(collections >= 1);
    assert_true(collected >= 1);
    assert_true(json_object_get_int64(get(r, "gc.stw_ns.count")) >= collections);
    assert_int_equal(json_object_get_int64(get(r, "objects.leaked_objects")), 0);
    json_object_put(r);
    out_free(&o);
  }
  {
    /* under the GIL: neither object, and the stw options are notes */
    const char *const args[] = {"run", "shared", "--duration-s=0.1", "--stw-probe-ms=2", NULL};
    out_t o = run(heaplab, args, NULL);
    if (o.status != 0) fail_msg("exit %d: %s", o.status, o.err);
    HAS(o.err, "stw-probe-ms=2");
    HAS(o.err, "no effect");
    json_object *r = json_tokener_parse(o.out);
    assert_non_null(r);
    assert_false(json_object_object_get_ex(r, "rc", NULL));
    assert_false(json_object_object_get_ex(r, "stw", NULL));
    assert_false(json_object_object_get_ex(get(r, "gc"), "stw_ns", NULL));
    json_object_put(r);
    out_free(&o);
  }
}

static void test_pool_statistics(void **s) {
  (void)s;
  const char *const args[] = {"run", "malloc-churn", "--alloc=pool", "--geometry=8,512,4K,256K",
                              "--alloc-stats=on", NULL};
  out_t o = run(heaplab, args, NULL);
  if (o.status != 0) fail_msg("exit %d: %s", o.status, o.err);
  HAS(o.err, "blocks in use");          /* the _debugmallocstats table */
  HAS(o.err, "arenas_highwater");
  json_object *r = json_tokener_parse(o.out);
  assert_string_equal(json_object_get_string(get(r, "alloc.allocator")), "pool");
  assert_true(json_object_get_int64(get(r, "alloc.arenas_allocated")) >= 1);
  /* the live set at the end of the timed part: 16384 blocks of 8..512 bytes,
   * all under this geometry's threshold */
  assert_int_equal(json_object_get_int64(get(r, "alloc.blocks_in_use")), 16384);
  assert_int_equal(json_object_get_int64(get(r, "alloc.after_free.blocks_in_use")), 0);
  assert_int_equal(json_object_get_int(get(r, "alloc.alignment")), 8);
  assert_int_equal(json_object_get_int(get(r, "alloc.pool_colours")), 1);
  assert_string_equal(json_object_get_string(get(r, "config.pool-requeue")), "back");
  json_object_put(r);
  out_free(&o);
  /* coloured pools, requeued at the front: the same live set, and the
   * result says how many colours and which requeue */
  const char *const coloured[] = {"run", "malloc-churn", "--alloc=pool", "--pool-colour=on",
                                  "--pool-requeue=front", NULL};
  o = run(heaplab, coloured, NULL);
  if (o.status != 0) fail_msg("exit %d: %s", o.status, o.err);
  r = json_tokener_parse(o.out);
  assert_string_equal(json_object_get_string(get(r, "config.pool-colour")), "on");
  assert_string_equal(json_object_get_string(get(r, "config.pool-requeue")), "front");
  assert_int_equal(json_object_get_int(get(r, "alloc.pool_colours")), 64);
  assert_int_equal(json_object_get_int64(get(r, "alloc.blocks_in_use")), 16384);
  assert_int_equal(json_object_get_int64(get(r, "alloc.after_free.blocks_in_use")), 0);
  json_object_put(r);
  out_free(&o);
  /* huge-page arenas: the preset's arena grows to one huge page, and every
   * arena was advised (whether the kernel found huge pages is its affair:
   * anon_huge_bytes says, and is not asserted) */
  if (access("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", R_OK) == 0) {
    const char *const huge[] = {"run", "malloc-churn", "--alloc=pool", "--arena-huge=on", NULL};
    o = run(heaplab, huge, NULL);
    if (o.status != 0) fail_msg("exit %d: %s", o.status, o.err);
    r = json_tokener_parse(o.out);
    assert_string_equal(json_object_get_string(get(r, "config.arena-huge")), "on");
    assert_true(json_object_get_int64(get(r, "alloc.arena_size")) >= 2 * 1024 * 1024);
    assert_true(json_object_get_int64(get(r, "alloc.arenas_allocated")) >= 1);
    assert_int_equal(json_object_get_int64(get(r, "alloc.arenas_huge")),
                     json_object_get_int64(get(r, "alloc.arenas_allocated")));
    assert_true(json_object_get_int64(get(r, "alloc.anon_huge_bytes")) >= 0);
    assert_int_equal(json_object_get_int64(get(r, "alloc.blocks_in_use")), 16384);
    json_object_put(r);
    out_free(&o);
  }
}

static void test_micro_json(void **s) {
  (void)s;
  const char *const args[] = {"--benchmark_format=json", "--benchmark_min_time=0.01",
                              "--benchmark_filter=alloc_free_ring/64$|inc_atomic_faa|qsbr", NULL};
  out_t o = run(micro, args, NULL);
  if (o.status != 0) fail_msg("exit %d: %s", o.status, o.err);
  json_object *r = json_tokener_parse(o.out);
  assert_non_null(r);
  json_object *benches = get(r, "benchmarks");
  assert_int_equal(json_object_array_length(benches), 3);
  for (size_t i = 0; i < 3; i++) {
    json_object *b = json_object_array_get_idx(benches, i);
    assert_true(json_object_get_int64(get(b, "iterations")) > 0);
    assert_true(json_object_get_double(get(b, "cpu_time")) > 0);
  }
  HAS(json_object_get_string(get(r, "context.heaplab_alloc")), "pool");
  json_object_put(r);
  out_free(&o);
}

/* Writes text (len bytes: it may hold NULs) to a new temporary file. */
static void temp_file(char *path, const char *text, size_t len) {
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, len), (ssize_t)len);
  close(fd);
}

/* heaplab compare on a result whose "config" is not an object of strings
 * and numbers: exit 2 naming the file and line, not a crash. */
static void test_compare_bad_config(void **s) {
  (void)s;
  static const char *const lines[][2] = {
      {"{\"workload\":\"malloc-churn\",\"config\":5}\n", "'config' is int"},
      {"{\"workload\":\"malloc-churn\",\"config\":null}\n", "'config' is null"},
      {"{\"workload\":\"malloc-churn\",\"config\":[1]}\n", "'config' is array"},
      {"{\"workload\":\"malloc-churn\",\"config\":{\"alloc\":null}}\n", "config.alloc is null"},
      {"{\"workload\":\"malloc-churn\",\"config\":{\"alloc\":{}}}\n", "config.alloc is object"},
  };
  char good[] = "/tmp/hl_drv_cmpa_XXXXXX";
  const char *ok = "{\"workload\":\"malloc-churn\",\"config\":{\"alloc\":\"pool\"}}\n";
  temp_file(good, ok, strlen(ok));
  for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
    char bad[] = "/tmp/hl_drv_cmpb_XXXXXX";
    char text[256];
    snprintf(text, sizeof text, "%s%s", ok, lines[i][0]);   /* the bad one on line 2 */
    temp_file(bad, text, strlen(text));
    char where[64];
    snprintf(where, sizeof where, "%s:2: ", bad);
    const char *const a[] = {"compare", good, bad, NULL};
    const char *const m[] = {where, lines[i][1], "expected", NULL};
    expect_bad(a, NULL, m);
    unlink(bad);
  }
  unlink(good);
}

/* A config file: a line over the limit is refused, not split (its tail
 * read as a line could set an option); a directory, a device, a NUL byte
 * are refused too. */
static void test_config_file_refused(void **s) {
  (void)s;
  /* a comment of 8190 bytes, then "threads = 7": split at 8191 bytes, the
   * tail would set threads */
  size_t n = 1 + 8190 + strlen("threads = 7\n");
  char *text = malloc(n + 1);
  text[0] = '#';
  memset(text + 1, 'x', 8190);
  strcpy(text + 1 + 8190, "threads = 7\n");
  char path[] = "/tmp/hl_drv_long_XXXXXX";
  temp_file(path, text, n);
  free(text);
  char cfg[64];
  snprintf(cfg, sizeof cfg, "--config=%s", path);
  char where[64];
  snprintf(where, sizeof where, "%s:1: line longer than 8192 bytes", path);
  {
    const char *const a[] = {"run", "malloc-churn", cfg, NULL};
    const char *const m[] = {where, NULL};
    expect_bad(a, NULL, m);
  }
  unlink(path);
  /* exactly 8192 bytes and its newline: accepted */
  text = malloc(8194);
  text[0] = '#';
  memset(text + 1, 'x', 8191);
  strcpy(text + 8192, "\n");
  char path2[] = "/tmp/hl_drv_long_XXXXXX";
  temp_file(path2, text, 8193);
  free(text);
  snprintf(cfg, sizeof cfg, "--config=%s", path2);
  {
    const char *const a[] = {"run", "malloc-churn", "--alloc=system", cfg, NULL};
    out_t o = run(heaplab, a, NULL);
    if (o.status != 0) fail_msg("a line of 8192 bytes: exit %d: %s", o.status, o.err);
    out_free(&o);
  }
  unlink(path2);
  {
    const char *const a[] = {"run", "malloc-churn", "--config=/tmp", NULL};
    const char *const m[] = {"'config'", "'/tmp' is a directory", "accepted", NULL};
    expect_bad(a, NULL, m);
  }
  {
    const char *const a[] = {"run", "malloc-churn", "--config=/dev/zero", NULL};
    const char *const m[] = {"'config'", "'/dev/zero' is not a regular file", "accepted", NULL};
    expect_bad(a, NULL, m);
  }
  {
    char p[] = "/tmp/hl_drv_nul_XXXXXX";
    temp_file(p, "seed = 3\nthreads = 2\0threads = 9\n", 33);
    char c[64], w[64];
    snprintf(c, sizeof c, "--config=%s", p);
    snprintf(w, sizeof w, "%s:2: a NUL byte", p);
    const char *const a[] = {"run", "malloc-churn", c, NULL};
    const char *const m[] = {w, NULL};
    expect_bad(a, NULL, m);
    unlink(p);
  }
}

/* A result that cannot be written fails the run (exit 1); a trace path
 * that cannot be opened is bad input, found before the run (exit 2). */
static void test_output_errors(void **s) {
  (void)s;
  const char *const a[] = {"run", "malloc-churn", "--alloc=system", NULL};
  out_t o = run_to(heaplab, a, NULL, "/dev/full");
  if (o.status != 1) fail_msg("stdout on /dev/full: exit %d, expected 1: %s", o.status, o.err);
  HAS(o.err, "cannot write the JSON result to standard output");
  HAS(o.err, "No space left on device");
  out_free(&o);
  /* the other commands' results too (list's tables, a sweep's --list) */
  const char *const l[] = {"list", NULL};
  o = run_to(heaplab, l, NULL, "/dev/full");
  if (o.status != 1) fail_msg("list > /dev/full: exit %d, expected 1: %s", o.status, o.err);
  HAS(o.err, "heaplab list: cannot write to standard output");
  HAS(o.err, "No space left on device");
  out_free(&o);
  const char *const h[] = {"--help", NULL};
  o = run_to(heaplab, h, NULL, "/dev/full");
  if (o.status != 1) fail_msg("--help > /dev/full: exit %d, expected 1: %s", o.status, o.err);
  out_free(&o);
  const char *const t[] = {"run", "malloc-churn", "--alloc=system", "--trace=/dev/full", NULL};
  o = run(heaplab, t, NULL);
  if (o.status != 1) fail_msg("--trace=/dev/full: exit %d, expected 1: %s", o.status, o.err);
  HAS(o.err, "option 'trace': cannot write '/dev/full'");
  out_free(&o);
  const char *const b[] = {"run", "malloc-churn", "--alloc=system", "--trace=/nonexistent/x", NULL};
  const char *const m[] = {"'trace'", "/nonexistent/x", "No such file or directory", "accepted",
                           NULL};
  expect_bad(b, NULL, m);
}

/* duration-s: decimal digits with an optional fraction, as the integers
 * without the fraction: no hex, blank, sign, exponent, inf */
static void test_duration_grammar(void **s) {
  (void)s;
  static const char *const bad[] = {"0x10", " 0.1", "-0", "+1", "1e1", "inf", "nan", ".5", "1.",
                                    "0.1 ", ""};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char flag[64], val[64];
    snprintf(flag, sizeof flag, "--duration-s=%s", bad[i]);
    snprintf(val, sizeof val, "'%s'", bad[i]);
    const char *const a[] = {"run", "malloc-churn", "--alloc=system", flag, NULL};
    const char *const m[] = {"option 'duration-s': invalid value", val, "a number in 0..86400",
                             NULL};
    expect_bad(a, NULL, m);
  }
  const char *const e[] = {"HEAPLAB_DURATION_S=0x10", NULL};
  const char *const a[] = {"run", "malloc-churn", "--alloc=system", NULL};
  const char *const m[] = {"'duration-s'", "HEAPLAB_DURATION_S", NULL};
  expect_bad(a, e, m);
  const char *const ok[] = {"run", "malloc-churn", "--alloc=system", "--duration-s=0.05", NULL};
  out_t o = run(heaplab, ok, NULL);
  if (o.status != 0) fail_msg("--duration-s=0.05: exit %d: %s", o.status, o.err);
  out_free(&o);
}

/* Only the documented spelling of a variable: HEAPLAB_pool-colour is none */
static void test_env_spelling(void **s) {
  (void)s;
  const char *const a[] = {"run", "malloc-churn", NULL};
  {
    const char *const e[] = {"HEAPLAB_pool-colour=on", NULL};
    const char *const m[] = {"HEAPLAB_pool-colour", "unknown variable", "HEAPLAB_POOL_COLOUR",
                             NULL};
    expect_bad(a, e, m);
  }
  {
    const char *const e[] = {"HEAPLAB_Seed=3", NULL};
    const char *const m[] = {"HEAPLAB_Seed", "unknown variable", "HEAPLAB_SEED", NULL};
    expect_bad(a, e, m);
  }
  /* the extra variables of other parts are still accepted */
  const char *const e[] = {"HEAPLAB_STATS=1", "HEAPLAB_STATS_FILE=/dev/null", NULL};
  const char *const r[] = {"run", "malloc-churn", "--alloc=system", NULL};
  out_t o = run(heaplab, r, e);
  if (o.status != 0) fail_msg("HEAPLAB_STATS, HEAPLAB_STATS_FILE: exit %d: %s", o.status, o.err);
  out_free(&o);
}

/* heaplab list takes --markdown and nothing else */
static void test_list_arguments(void **s) {
  (void)s;
  {
    const char *const a[] = {"list", "extra", NULL};
    const char *const m[] = {"unknown argument 'extra'", "accepted: --markdown", NULL};
    expect_bad(a, NULL, m);
  }
  {
    const char *const a[] = {"list", "--markdown", "extra", NULL};
    const char *const m[] = {"accepted: --markdown", NULL};
    expect_bad(a, NULL, m);
  }
  const char *const a[] = {"list", "--markdown", NULL};
  out_t o = run(heaplab, a, NULL);
  assert_int_equal(o.status, 0);
  HAS(o.out, "Generated by");
  out_free(&o);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s PATH/heaplab PATH/heaplab-micro\n", argv[0]);
    return 2;
  }
  heaplab = argv[1];
  micro = argv[2];
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_help_and_list),
      cmocka_unit_test(test_run_prints_one_json_object),
      cmocka_unit_test(test_convoy),
      cmocka_unit_test(test_prefork),
      cmocka_unit_test(test_same_seed_same_checksum),
      cmocka_unit_test(test_sizes_options),
      cmocka_unit_test(test_env_and_config_file_reach_the_result),
      cmocka_unit_test(test_trace_file),
      cmocka_unit_test(test_bad_input_exits_2),
      cmocka_unit_test(test_compare_bad_config),
      cmocka_unit_test(test_config_file_refused),
      cmocka_unit_test(test_output_errors),
      cmocka_unit_test(test_duration_grammar),
      cmocka_unit_test(test_env_spelling),
      cmocka_unit_test(test_list_arguments),
      cmocka_unit_test(test_gc_result),
      cmocka_unit_test(test_collector_workloads),
      cmocka_unit_test(test_freethreaded_result),
      cmocka_unit_test(test_pool_statistics),
      cmocka_unit_test(test_micro_json),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
