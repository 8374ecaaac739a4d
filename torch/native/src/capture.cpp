// Allocation capture (shim.h): a CPU allocator that gives the capturing thread's large allocations mappings of their
// own, so a kept graph's saved tensors can be written to an O_DIRECT file as they lie and their pages given back
// until backward reads them into the same addresses. Everything else goes to the allocator it replaced.
//
// The page pool: a region's pages, once written out, are moved (mremap MREMAP_DONTUNMAP: page tables, not bytes) into
// a pool of resident mappings instead of being freed, up to the pool's limit; a later capture allocation of the same
// size takes a pooled mapping as it is, and a read-back first moves pooled pages under the region, so neither faults
// in and zeroes fresh pages (without the pool the default `bench step` shape spilled at 0.76x of eager, with it at
// 0.91x). Freed regions join the pool too. What the limit leaves out is freed (MADV_DONTNEED, munmap).
#include <c10/core/CPUAllocator.h>
#include <sys/mman.h>
#include <torch/version.h>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <vector>
#include "common.h"

namespace {

constexpr size_t kPage = 4096;
constexpr size_t kHugePage = size_t(2) << 20;
constexpr size_t kMinBytes = size_t(64) << 10;

struct Mapping {
  size_t bytes;   // the region: [pointer, pointer + bytes), page-rounded (what goes to the file)
  size_t length;  // the mapping: bytes rounded up to the 2 MiB huge page from 2 MiB on
};

struct CaptureState {
  bool capturing = false;
  bool active = false;
  std::vector<void*> taken;                        // pointers allocated since begin (freed ones included)
  std::vector<std::pair<void*, int64_t>> result;   // live regions at end
};

thread_local CaptureState t_capture;
std::mutex g_mutex;
std::unordered_map<void*, Mapping>* g_live = new std::unordered_map<void*, Mapping>();  // never destroyed: deleters may run at exit
std::unordered_map<size_t, std::vector<void*>>* g_pool = new std::unordered_map<size_t, std::vector<void*>>();  // resident mappings by length
size_t g_pool_bytes = 0;
int64_t g_pool_limit = 0;
c10::Allocator* g_inner = nullptr;

size_t mapping_length(size_t bytes) { return bytes >= kHugePage ? (bytes + kHugePage - 1) & ~(kHugePage - 1) : bytes; }

// The mapping length of the live region at pointer of byte_count bytes; a bug in the caller otherwise (caller holds g_mutex).
size_t live_length(void* pointer, int64_t byte_count, const char* what) {
  auto it = g_live->find(pointer);
  TORCH_CHECK(it != g_live->end() && static_cast<int64_t>(it->second.bytes) == byte_count,
              "FineTune: ", what, " memory that is not a live captured region of that size");
  return it->second.length;
}

// A pooled mapping of that length, or null (caller holds g_mutex).
void* pool_take(size_t length) {
  auto it = g_pool->find(length);
  if (it == g_pool->end() || it->second.empty()) return nullptr;
  void* p = it->second.back();
  it->second.pop_back();
  g_pool_bytes -= length;
  return p;
}

// Whether the pool has room for length more bytes; if so they are counted (caller holds g_mutex).
bool pool_reserve(size_t length) {
  if (static_cast<int64_t>(g_pool_bytes + length) > g_pool_limit) return false;
  g_pool_bytes += length;
  return true;
}

// Frees pooled mappings until the pool fits its limit (caller holds g_mutex).
void pool_trim() {
  for (auto& entry : *g_pool) {
    while (static_cast<int64_t>(g_pool_bytes) > g_pool_limit && !entry.second.empty()) {
      munmap(entry.second.back(), entry.first);
      entry.second.pop_back();
      g_pool_bytes -= entry.first;
    }
  }
}

// A fresh anonymous mapping of length bytes, 2 MiB-aligned and madvised for huge pages from 2 MiB on; null on failure.
void* map_fresh(size_t length) {
  bool huge = length >= kHugePage;
  size_t span = huge ? length + kHugePage : length;
  void* base = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) return nullptr;
  if (!huge) return base;
  uintptr_t b = reinterpret_cast<uintptr_t>(base);
  uintptr_t p = (b + kHugePage - 1) & ~(uintptr_t)(kHugePage - 1);
  if (p > b) munmap(base, p - b);
  if (b + span > p + length) munmap(reinterpret_cast<void*>(p + length), b + span - (p + length));
  madvise(reinterpret_cast<void*>(p), length, MADV_HUGEPAGE);
  return reinterpret_cast<void*>(p);
}

void delete_region(void* pointer);

// Mapping of the region at pointer, if it is one of ours; removed from the live set.
bool take_mapping(void* pointer, Mapping* out) {
  std::lock_guard<std::mutex> lock(g_mutex);
  auto it = g_live->find(pointer);
  if (it == g_live->end()) return false;
  *out = it->second;
  g_live->erase(it);
  return true;
}

void delete_region(void* pointer) {
  Mapping m;
  if (take_mapping(pointer, &m)) {
    {
      std::lock_guard<std::mutex> lock(g_mutex);
      if (pool_reserve(m.length)) {
        (*g_pool)[m.length].push_back(pointer);  // its pages (read back, or never sent) serve the next region of its size
        return;
      }
    }
    munmap(pointer, m.length);
    return;
  }
  g_inner->raw_deleter()(pointer);  // allocated by the inner allocator through raw_allocate
}

void* map_region(size_t bytes, Mapping* out) {
  size_t length = mapping_length(bytes);
  *out = Mapping{bytes, length};
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    if (void* pooled = pool_take(length)) return pooled;
  }
  return map_fresh(length);
}

class CapturingAllocator final : public c10::Allocator {
 public:
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
  c10::DataPtr allocate(size_t n) override { return allocate_impl(n); }
  void copy_data(void* dest, const void* src, std::size_t count) const override { default_copy_data(dest, src, count); }
#else
  c10::DataPtr allocate(size_t n) const override { return allocate_impl(n); }
#endif
  c10::DeleterFnPtr raw_deleter() const override { return &delete_region; }

 private:
  c10::DataPtr allocate_impl(size_t n) const {
    CaptureState& state = t_capture;
    if (!state.active || n < kMinBytes) return g_inner->allocate(n);
    size_t bytes = (n + kPage - 1) & ~(kPage - 1);
    Mapping m;
    void* pointer = map_region(bytes, &m);
    if (pointer == nullptr) return g_inner->allocate(n);  // no address space: an ordinary allocation, never spilled
    {
      std::lock_guard<std::mutex> lock(g_mutex);
      (*g_live)[pointer] = m;
    }
    state.taken.push_back(pointer);
    return c10::DataPtr(pointer, pointer, &delete_region, c10::Device(c10::DeviceType::CPU));
  }
};

CapturingAllocator* install() {
  static CapturingAllocator* allocator = [] {
    g_inner = c10::GetCPUAllocator();
    auto* a = new CapturingAllocator();
    c10::SetCPUAllocator(a, /*priority=*/100);
    TORCH_CHECK(c10::GetCPUAllocator() == a, "FineTune: another CPU allocator of higher priority is installed; allocation capture needs its own");
    return a;
  }();
  return allocator;
}

}  // namespace

FT_EXPORT int64_t ft_capture_min_bytes(void) { return static_cast<int64_t>(kMinBytes); }

FT_EXPORT int32_t ft_capture_begin(void) {
  FT_TRY
  install();
  CaptureState& state = t_capture;
  TORCH_CHECK(!state.capturing, "FineTune: this thread already captures its allocations");
  state.capturing = true;
  state.active = true;
  state.taken.clear();
  FT_CATCH
}

FT_EXPORT int32_t ft_capture_set_active(int32_t active, int32_t* was_active) {
  FT_TRY
  CaptureState& state = t_capture;
  *was_active = state.active ? 1 : 0;
  state.active = state.capturing && active != 0;
  FT_CATCH
}

FT_EXPORT int32_t ft_capture_end(int64_t* count) {
  FT_TRY
  CaptureState& state = t_capture;
  TORCH_CHECK(state.capturing, "FineTune: this thread does not capture its allocations");
  state.capturing = false;
  state.active = false;
  state.result.clear();
  std::unordered_set<void*> seen;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    for (void* pointer : state.taken) {
      auto it = g_live->find(pointer);
      if (it != g_live->end() && seen.insert(pointer).second)
        state.result.emplace_back(pointer, static_cast<int64_t>(it->second.bytes));
    }
  }
  state.taken.clear();
  *count = static_cast<int64_t>(state.result.size());
  FT_CATCH
}

FT_EXPORT int32_t ft_capture_result(void** pointers, int64_t* byte_counts, int64_t capacity) {
  FT_TRY
  CaptureState& state = t_capture;
  int64_t n = std::min<int64_t>(capacity, static_cast<int64_t>(state.result.size()));
  for (int64_t i = 0; i < n; i++) {
    pointers[i] = state.result[i].first;
    byte_counts[i] = state.result[i].second;
  }
  state.result.clear();
  FT_CATCH
}

FT_EXPORT int32_t ft_capture_discard(void* pointer, int64_t byte_count) {
  FT_TRY
  size_t length;
  bool pooled;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    length = live_length(pointer, byte_count, "discard of");
    pooled = pool_reserve(length);
  }
  if (pooled) {
    // the pages move to a new mapping of the pool; the region stays mapped, empty (zeros if read)
    void* target = map_fresh(length);
    void* moved = target == nullptr ? MAP_FAILED
        : mremap(pointer, length, length, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, target);
    std::lock_guard<std::mutex> lock(g_mutex);
    if (moved != MAP_FAILED) {
      (*g_pool)[length].push_back(moved);
      return FT_OK;
    }
    g_pool_bytes -= length;  // no room in the address space, or a kernel without MREMAP_DONTUNMAP: free them instead
    if (target != nullptr) munmap(target, length);
  }
  TORCH_CHECK(madvise(pointer, length, MADV_DONTNEED) == 0, "FineTune: madvise(MADV_DONTNEED) failed");
  FT_CATCH
}

FT_EXPORT int32_t ft_capture_supply_pages(void* pointer, int64_t byte_count, int32_t* supplied) {
  FT_TRY
  *supplied = 0;
  void* donor;
  size_t length;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    length = live_length(pointer, byte_count, "pages supplied to");
    donor = pool_take(length);
  }
  if (donor == nullptr) return FT_OK;
  // the donor's page tables move under the region, replacing its empty mapping in one step (no window for another mmap)
  if (mremap(donor, length, length, MREMAP_MAYMOVE | MREMAP_FIXED, pointer) != MAP_FAILED) {
    *supplied = 1;
    return FT_OK;
  }
  munmap(donor, length);
  FT_CATCH
}

FT_EXPORT int32_t ft_capture_pool_limit(int64_t delta, int64_t* limit, int64_t* pooled_bytes) {
  FT_TRY
  std::lock_guard<std::mutex> lock(g_mutex);
  g_pool_limit = std::max<int64_t>(0, g_pool_limit + delta);
  pool_trim();
  *limit = g_pool_limit;
  *pooled_bytes = static_cast<int64_t>(g_pool_bytes);
  FT_CATCH
}
