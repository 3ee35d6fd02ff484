/* The machine as hwloc sees it, and thread pinning.
 *
 * Broquedis, Clet-Ortega, Moreaud, Furmento, Goglin, Mercier, Thibault and
 * Namyst, "hwloc: a generic framework for managing hardware affinities in
 * HPC applications", PDP 2010.
 *
 * The topology is loaded once, on first use (pthread_once), and never
 * changed after: hwloc's read-only queries on a loaded topology are
 * thread-safe, and so are binding calls, so no lock is needed afterwards.
 * It is never destroyed; the process keeps it until exit.
 *
 * Pinning. Index i goes to core (i mod cores), bound to the whole core's
 * cpuset (all of its hardware threads), not to one PU: consecutive indexes
 * land on different cores, and two threads that share a core share it the
 * way the scheduler would. hwloc 2.x removes the cpus the process's cgroup
 * does not allow, so "cores" counts only usable ones (a taskset mask is not
 * such a restriction: pinning may move a thread outside it).
 *
 * Errors: hwloc returns -1 and sets errno; we return -errno (-ENOSYS where
 * errno was left 0), never abort. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <hwloc.h>

#include "hl_sync.h"

static pthread_once_t topo_once = PTHREAD_ONCE_INIT;
static hwloc_topology_t topo;      /* valid when topo_error == 0 */
static int topo_error;             /* 0 or -errno of the failed load */

static int neg_errno(void) { return errno ? -errno : -ENOSYS; }

static void load_topology(void) {
  if (hwloc_topology_init(&topo) != 0) {
    topo_error = neg_errno();
    return;
  }
  if (hwloc_topology_load(topo) != 0) {
    topo_error = neg_errno();
    hwloc_topology_destroy(topo);
  }
}

/* 0 when the topology is loaded; pthread_once makes load_topology's writes
 * visible to every caller that returns from it. */
static int topology(void) {
  int rc = pthread_once(&topo_once, load_topology);
  if (rc != 0) return -rc;
  return topo_error;
}

/* Appends src to the string in a fixed field, truncating quietly: these are
 * labels. (snprintf would do, but GCC's -Wformat-truncation warns on every
 * field shorter than its utsname source.) */
static void append_field(char *dst, size_t cap, const char *src) {
  size_t used = strnlen(dst, cap - 1);
  size_t n = strnlen(src, cap - 1 - used);
  memcpy(dst + used, src, n);
  dst[used + n] = '\0';
}
#define COPY_FIELD(dst, src) ((dst)[0] = '\0', append_field((dst), sizeof(dst), (src)))

static void describe_host(hl_machine_t *m) {
  struct utsname u;
  if (uname(&u) == 0) {
    COPY_FIELD(m->kernel, u.sysname);
    append_field(m->kernel, sizeof m->kernel, " ");
    append_field(m->kernel, sizeof m->kernel, u.release);
    COPY_FIELD(m->arch, u.machine);
  }
  /* gethostname does not promise a terminator when the name is truncated. */
  char host[256];
  if (gethostname(host, sizeof host) == 0) {
    host[sizeof host - 1] = '\0';
    COPY_FIELD(m->hostname, host);
  }
}

static int count_of(hwloc_obj_type_t type) {
  int n = hwloc_get_nbobjs_by_type(topo, type);
  return n < 0 ? 0 : n;   /* -1: the type sits at several depths; not for these */
}

int hl_topo_describe(hl_machine_t *m) {
  memset(m, 0, sizeof *m);
  COPY_FIELD(m->cpu, "unknown");
  COPY_FIELD(m->kernel, "unknown");
  COPY_FIELD(m->arch, "unknown");
  COPY_FIELD(m->hostname, "unknown");
  describe_host(m);

  int rc = topology();
  if (rc != 0) return rc;

  hwloc_obj_t root = hwloc_get_root_obj(topo);
  hwloc_obj_t pkg = hwloc_get_obj_by_type(topo, HWLOC_OBJ_PACKAGE, 0);
  const char *model = pkg ? hwloc_obj_get_info_by_name(pkg, "CPUModel") : NULL;
  if (model == NULL) model = hwloc_obj_get_info_by_name(root, "CPUModel");
  if (model != NULL) COPY_FIELD(m->cpu, model);

  m->packages = count_of(HWLOC_OBJ_PACKAGE);
  m->cores = count_of(HWLOC_OBJ_CORE);
  m->pus = count_of(HWLOC_OBJ_PU);
  m->numa_nodes = count_of(HWLOC_OBJ_NUMANODE);
  /* hwloc always has PUs and at least one NUMA node; a backend that finds no
   * cores (some VMs, some architectures) means one core per PU. */
  if (m->cores == 0) m->cores = m->pus;
  if (m->packages == 0) m->packages = 1;

  hwloc_obj_t l3 = hwloc_get_obj_by_type(topo, HWLOC_OBJ_L3CACHE, 0);
  m->l3_bytes = l3 ? l3->attr->cache.size : 0;
  /* The kernel's count of physical pages, not hwloc's sum over NUMA nodes:
   * on VMs with hot-plugged memory (this project's 24 GiB machines) the node
   * files list only the boot-time part. */
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  m->memory_bytes = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : root->total_memory;

  /* The running library's release (hwloc records it on the root object);
   * the API version, which only changes with the interface, otherwise. */
  const char *version = hwloc_obj_get_info_by_name(root, "hwlocVersion");
  if (version != NULL) {
    COPY_FIELD(m->hwloc_version, version);
  } else {
    unsigned v = hwloc_get_api_version();
    snprintf(m->hwloc_version, sizeof m->hwloc_version, "%u.%u.%u",
             v >> 16, (v >> 8) & 0xff, v & 0xff);
  }
  return 0;
}

/* The objects threads are pinned to: cores, or PUs when hwloc found none. */
static hwloc_obj_type_t pin_type(void) {
  return hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE) > 0 ? HWLOC_OBJ_CORE : HWLOC_OBJ_PU;
}

int hl_topo_pin_current_thread(unsigned index) {
  int rc = topology();
  if (rc != 0) return rc;
  hwloc_obj_type_t type = pin_type();
  int n = hwloc_get_nbobjs_by_type(topo, type);
  if (n <= 0) return -ENODEV;
  hwloc_obj_t core = hwloc_get_obj_by_type(topo, type, index % (unsigned)n);
  if (core == NULL || core->cpuset == NULL) return -ENODEV;
  if (hwloc_set_cpubind(topo, core->cpuset, HWLOC_CPUBIND_THREAD) != 0) return neg_errno();
  return 0;
}

int hl_topo_bound_core(void) {
  if (topology() != 0) return -1;
  hwloc_bitmap_t set = hwloc_bitmap_alloc();
  if (set == NULL) return -1;
  int found = -1;
  if (hwloc_get_cpubind(topo, set, HWLOC_CPUBIND_THREAD) == 0 && !hwloc_bitmap_iszero(set)) {
    hwloc_obj_type_t type = pin_type();
    hwloc_obj_t core = NULL;
    while ((core = hwloc_get_next_obj_by_type(topo, type, core)) != NULL) {
      if (hwloc_bitmap_isincluded(set, core->cpuset)) {
        found = (int)core->logical_index;
        break;
      }
    }
  }
  hwloc_bitmap_free(set);
  return found;
}

int hl_topo_current_numa_node(void) {
  if (topology() != 0) return 0;
  hwloc_bitmap_t set = hwloc_bitmap_alloc();
  if (set == NULL) return 0;
  int node_index = 0;
  /* The PU the thread last ran on (it may have moved since: a hint). In
   * hwloc 2.x NUMA nodes are memory children, off the cpu tree, but each
   * still carries the cpuset of the PUs local to it. */
  if (hwloc_get_last_cpu_location(topo, set, HWLOC_CPUBIND_THREAD) == 0 && !hwloc_bitmap_iszero(set)) {
    hwloc_obj_t node = NULL;
    while ((node = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_NUMANODE, node)) != NULL) {
      if (node->cpuset != NULL && hwloc_bitmap_intersects(set, node->cpuset)) {
        node_index = (int)node->logical_index;
        break;
      }
    }
  }
  hwloc_bitmap_free(set);
  return node_index;
}
