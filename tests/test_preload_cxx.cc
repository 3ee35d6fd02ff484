// libheaplab-malloc.so under LD_PRELOAD from C++: libstdc++'s operator new
// and delete call malloc and free (aligned new calls aligned_alloc), so the
// containers' nodes and buffers land in the pools without a C++ file in the
// library. Checks ownership through hl_preload_block_size (see test_preload.c),
// then works the containers from several threads.
#include <dlfcn.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#define CHECK(c)                                                                      \
  do {                                                                                \
    if (!(c)) {                                                                       \
      std::fprintf(stderr, "test_preload_cxx: %s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
      std::exit(1);                                                                   \
    }                                                                                 \
  } while (0)

namespace {

size_t (*block_size)(const void *);

bool ours(const void *p) { return block_size(p) != 0; }

struct alignas(64) Line {
  unsigned char bytes[64];
};

// Deterministic work per thread: maps of strings, vectors that grow past
// the pools' threshold, shared_ptrs handed between structures.
uint64_t churn(unsigned seed) {
  std::map<int, std::string> m;
  std::unordered_map<std::string, std::vector<int>> u;
  std::vector<std::shared_ptr<std::string>> shared;
  uint64_t sum = 0;
  uint64_t x = seed * 2654435761u + 1;
  for (int i = 0; i < 20000; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::string s(1 + x % 200, static_cast<char>('a' + i % 26));
    m[static_cast<int>(x % 5000)] = s;
    auto &v = u[s.substr(0, 1 + x % 3)];
    v.push_back(i);
    if (i % 7 == 0) shared.push_back(std::make_shared<std::string>(s));
    if (i % 1000 == 999) {
      sum += m.size() + u.size() + shared.size();
      m.erase(m.begin(), m.find(static_cast<int>(x % 2500)));
      shared.clear();
    }
  }
  for (auto &kv : u) sum += kv.second.size();
  return sum;
}

}  // namespace

int main() {
  block_size = reinterpret_cast<size_t (*)(const void *)>(
      dlsym(RTLD_DEFAULT, "hl_preload_block_size"));
  if (!block_size) {
    std::fprintf(stderr, "test_preload_cxx: libheaplab-malloc.so is not preloaded (LD_PRELOAD)\n");
    return 1;
  }
  int *one = new int(42);
  CHECK(ours(one) && *one == 42);
  delete one;
  int *arr = new int[10]();
  CHECK(ours(arr) && arr[9] == 0);
  delete[] arr;
  auto *big = new char[100000];
  CHECK(!ours(big));   // above the threshold: glibc's
  delete[] big;
  Line *line = new Line;   // over-aligned: operator new(size, align_val_t)
  CHECK((reinterpret_cast<uintptr_t>(line) & 63) == 0 && !ours(line));
  delete line;
  std::string s(100, 'x');
  CHECK(ours(s.data()));
  std::vector<int> v;
  for (int i = 0; i < 100000; i++) v.push_back(i);
  CHECK(!ours(v.data()) && v[99999] == 99999);
  v.resize(10);
  v.shrink_to_fit();
  CHECK(ours(v.data()) && v[9] == 9);
  std::map<int, int> m{{1, 2}, {3, 4}};
  CHECK(ours(&*m.begin()));
  try {
    std::vector<char> huge;
    huge.reserve(static_cast<size_t>(PTRDIFF_MAX) - 1);
    CHECK(false);
  } catch (const std::bad_alloc &) {
  }

  const unsigned threads = 4;
  std::vector<uint64_t> got(threads), want(threads);
  for (unsigned t = 0; t < threads; t++) want[t] = churn(t);
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; t++) pool.emplace_back([&got, t] { got[t] = churn(t); });
  for (auto &th : pool) th.join();
  for (unsigned t = 0; t < threads; t++) CHECK(got[t] == want[t]);
  std::printf("test_preload_cxx: every check passed\n");
  return 0;
}
