// c10d process groups and the collectives a ZeRO-partitioned optimizer needs: all-reduce, reduce, broadcast,
// all-gather, reduce-scatter and barrier. Gloo carries CPU tensors (views over FineTune's pool memory included:
// Gloo reads and writes the tensor's own data pointer); NCCL carries CUDA tensors and exists only in CUDA builds
// that found nccl.h. Every collective is waited for here, so a call returns only when its result is in place, and
// no wait is unbounded: Gloo applies the group timeout inside each algorithm (a peer that stops sending ends the
// receive), and this file adds an outer bound of timeout + 5 s for anything that escapes it.
// After a failure the group is marked broken: peers may be mid-operation, so the next collective would pair with
// the wrong one. Every later call then fails at once with the first failure's message.
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>
#include <torch/version.h>
#include "dist_common.h"

#if __has_include(<gloo/algorithm.h>)
#define FT_WITH_GLOO 1
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif

#ifdef FT_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>

using ft::T;
using ft::dist::S;

namespace {

// libtorch 2.x split the collective implementations out of ProcessGroup into Backend; both have the same methods.
#if TORCH_VERSION_MAJOR >= 2
using GroupBase = c10d::Backend;
#else
using GroupBase = c10d::ProcessGroup;
#endif

constexpr int32_t kGloo = 0;
constexpr int32_t kNccl = 1;
constexpr std::chrono::milliseconds kOuterMargin{5000};

struct GroupHandle {
  c10::intrusive_ptr<GroupBase> group;
  int32_t backend = kGloo;
  int32_t rank = 0;
  int32_t size = 1;
  std::chrono::milliseconds timeout{0};
  std::mutex mutex;   // guards broken: collectives of one group may be called from several threads
  std::string broken;  // the first failure, empty while the group is usable
};

GroupHandle& G(ft_process_group h) {
  TORCH_CHECK(h != nullptr, "FineTune: a null process group handle was passed to the native shim");
  return *reinterpret_cast<GroupHandle*>(h);
}

const char* backend_name(int32_t backend) { return backend == kNccl ? "nccl" : "gloo"; }

std::string prefix(const GroupHandle& g) {
  return "rank " + std::to_string(g.rank) + " of " + std::to_string(g.size) + " (" + backend_name(g.backend) + "): ";
}

c10d::ReduceOp reduce_op(int32_t op) {
  switch (op) {
    case 0: return c10d::ReduceOp::SUM;
    case 1: return c10d::ReduceOp::PRODUCT;
    case 2: return c10d::ReduceOp::MIN;
    case 3: return c10d::ReduceOp::MAX;
  }
  TORCH_CHECK(false, "FineTune: unknown reduce op code ", op);
}

// The dtypes ProcessGroupGloo's algorithms are instantiated for (its GENERATE_ALL_TYPES); 2.x added bfloat16.
bool gloo_carries(at::ScalarType type) {
  switch (type) {
    case at::kFloat: case at::kDouble: case at::kHalf: case at::kChar: case at::kByte: case at::kInt: case at::kLong:
      return true;
#if TORCH_VERSION_MAJOR >= 2
    case at::kBFloat16:
      return true;
#endif
    default:
      return false;
  }
}

// Waits for one collective within the group's timeout. NCCL's wait() only orders the caller's CUDA stream after
// the collective; polling isCompleted() (a CUDA event query) is what makes the host wait bounded.
void wait_for(GroupHandle& g, const c10::intrusive_ptr<c10d::Work>& work) {
  auto limit = g.timeout + kOuterMargin;
  if (g.backend == kNccl) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!work->isCompleted()) {
      TORCH_CHECK(std::chrono::steady_clock::now() < deadline, "not completed within ", limit.count() / 1000.0, " s");
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
  work->wait(limit);
}

// Runs one collective: refuses on a broken group, checks the tensors, waits, and on failure breaks the group and
// rethrows with the rank, the world size, the backend and the operation in front of libtorch's message.
template <class Body>
void collective(GroupHandle& g, const char* operation, const std::vector<at::Tensor*>& tensors, Body&& body) {
  {
    std::lock_guard<std::mutex> lock(g.mutex);
    TORCH_CHECK(g.broken.empty(), prefix(g), operation, " refused: the group failed earlier (", g.broken, ")");
  }
  at::DeviceType want = g.backend == kNccl ? at::kCUDA : at::kCPU;
  for (at::Tensor* t : tensors) {
    // Gloo finds out about a dtype it cannot carry on its worker thread, after the peers have started: refuse here.
    TORCH_CHECK(g.backend != kGloo || gloo_carries(t->scalar_type()), prefix(g), operation, " cannot carry ",
                t->scalar_type(), " tensors over Gloo in libtorch ", TORCH_VERSION, "; use float32 (FineTune keeps gradients and master weights in float32)");
    TORCH_CHECK(t->device().type() == want, prefix(g), operation, " needs ", want == at::kCPU ? "CPU" : "CUDA",
                " tensors, got one on ", t->device());
    TORCH_CHECK(t->is_contiguous(), prefix(g), operation, " needs contiguous tensors (call Contiguous() first)");
  }
  std::string cause;
  c10::intrusive_ptr<c10d::Work> work;
  try {
    work = body();
  } catch (const std::exception& e) {
    // Gloo checks a call's arguments (dtype, sizes) on the caller's thread before it queues any work, so a throw
    // here sent nothing and the group is still in step: the caller's error, not a peer's. NCCL may already have
    // talked to its peers (communicator setup) when it throws, so there it breaks the group as any failure does.
    const auto* error = dynamic_cast<const c10::Error*>(&e);
    cause = error != nullptr ? error->what_without_backtrace() : e.what();
    TORCH_CHECK(g.backend != kGloo, prefix(g), operation, " refused its arguments: ", cause);
  }
  if (work) {
    try {
      wait_for(g, work);
      return;
    } catch (const c10::Error& e) {
      cause = e.what_without_backtrace();
    } catch (const std::exception& e) {
      cause = e.what();
    }
  }
  std::string message = prefix(g) + operation + " failed: " + cause;
  {
    std::lock_guard<std::mutex> lock(g.mutex);
    if (g.broken.empty()) g.broken = operation + std::string(" failed: ") + cause;
  }
  TORCH_CHECK(false, message);
}

}  // namespace

FT_EXPORT int32_t ft_dist_backend_available(int32_t backend, int32_t* available) {
  FT_TRY
  *available = 0;
#ifdef FT_WITH_GLOO
  if (backend == kGloo) *available = 1;
#endif
#ifdef FT_WITH_NCCL
  if (backend == kNccl) *available = 1;
#endif
  FT_CATCH
}

FT_EXPORT int32_t ft_pg_new(int32_t backend, ft_store store, const char* key_prefix, int32_t rank, int32_t world_size,
                            const char* hostname, int64_t timeout_ms, int32_t threads, ft_process_group* out) {
  FT_TRY
  TORCH_CHECK(world_size >= 1 && rank >= 0 && rank < world_size, "FineTune: rank ", rank, " is not in 0..", world_size - 1);
  TORCH_CHECK(timeout_ms > 0, "FineTune: the process group timeout must be positive, got ", timeout_ms, " ms");
  auto scoped = c10::make_intrusive<c10d::PrefixStore>(key_prefix != nullptr ? key_prefix : "", S(store).store);
  auto timeout = std::chrono::milliseconds(timeout_ms);
  auto handle = std::make_unique<GroupHandle>();
  handle->backend = backend;
  handle->rank = rank;
  handle->size = world_size;
  handle->timeout = timeout;
  if (backend == kGloo) {
#ifdef FT_WITH_GLOO
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    std::string host = hostname != nullptr ? hostname : "";
    options->devices.push_back(host.empty() ? c10d::ProcessGroupGloo::createDefaultDevice()
                                            : c10d::ProcessGroupGloo::createDeviceForHostname(host));
    if (threads > 0) options->threads = threads;
    handle->group = c10::make_intrusive<c10d::ProcessGroupGloo>(scoped, rank, world_size, options);
#else
    TORCH_CHECK(false, "FineTune was built without Gloo (no gloo headers when the shim was compiled); install libgloo-dev and rebuild with ./build.sh");
#endif
  } else if (backend == kNccl) {
#ifdef FT_WITH_NCCL
    auto options = c10d::ProcessGroupNCCL::Options::create();
    options->timeout = timeout;
    handle->group = c10::make_intrusive<c10d::ProcessGroupNCCL>(scoped, rank, world_size, options);
#else
    TORCH_CHECK(false, "FineTune was built without NCCL (it needs a CUDA libtorch and nccl.h); rebuild with FINETUNE_LIBTORCH pointing at a CUDA libtorch");
#endif
  } else {
    TORCH_CHECK(false, "FineTune: unknown process group backend code ", backend);
  }
  *out = reinterpret_cast<ft_process_group>(handle.release());
  FT_CATCH
}

FT_EXPORT void ft_pg_free(ft_process_group group) { delete reinterpret_cast<GroupHandle*>(group); }

FT_EXPORT int32_t ft_pg_all_reduce(ft_process_group group, ft_tensor t, int32_t op) {
  FT_TRY
  GroupHandle& g = G(group);
  std::vector<at::Tensor> tensors{T(t)};
  c10d::AllreduceOptions options;
  options.reduceOp = reduce_op(op);
  options.timeout = g.timeout;
  collective(g, "all_reduce", {&tensors[0]}, [&] { return g.group->allreduce(tensors, options); });
  FT_CATCH
}

FT_EXPORT int32_t ft_pg_reduce(ft_process_group group, ft_tensor t, int32_t root, int32_t op) {
  FT_TRY
  GroupHandle& g = G(group);
  TORCH_CHECK(root >= 0 && root < g.size, prefix(g), "reduce to rank ", root, ", which is not in 0..", g.size - 1);
  std::vector<at::Tensor> tensors{T(t)};
  c10d::ReduceOptions options;
  options.reduceOp = reduce_op(op);
  options.rootRank = root;
  options.timeout = g.timeout;
  collective(g, "reduce", {&tensors[0]}, [&] { return g.group->reduce(tensors, options); });
  FT_CATCH
}

FT_EXPORT int32_t ft_pg_broadcast(ft_process_group group, ft_tensor t, int32_t root) {
  FT_TRY
  GroupHandle& g = G(group);
  TORCH_CHECK(root >= 0 && root < g.size, prefix(g), "broadcast from rank ", root, ", which is not in 0..", g.size - 1);
  std::vector<at::Tensor> tensors{T(t)};
  c10d::BroadcastOptions options;
  options.rootRank = root;
  options.timeout = g.timeout;
  collective(g, "broadcast", {&tensors[0]}, [&] { return g.group->broadcast(tensors, options); });
  FT_CATCH
}

FT_EXPORT int32_t ft_pg_all_gather(ft_process_group group, ft_tensor input, ft_tensor output) {
  FT_TRY
  GroupHandle& g = G(group);
  at::Tensor& in = T(input);
  at::Tensor& outAll = T(output);
  TORCH_CHECK(outAll.numel() == in.numel() * g.size && outAll.scalar_type() == in.scalar_type(), prefix(g),
              "all_gather needs an output of world size x input elements (", in.numel() * g.size, " ", in.scalar_type(),
              "), got ", outAll.numel(), " ", outAll.scalar_type());
  c10d::AllgatherOptions options;
  options.timeout = g.timeout;
  if (g.backend == kNccl) {
    at::Tensor flatIn = in.view({-1}), flatOut = outAll.view({-1});
    collective(g, "all_gather", {&in, &outAll}, [&] { return g.group->_allgather_base(flatOut, flatIn, options); });
  } else {
    // Gloo in libtorch 1.13 has no _allgather_base; the list form with views into the output is the same result
    // (Gloo gathers into one flat buffer of its own and copies each rank's part out).
    std::vector<at::Tensor> inputs{in.view({-1})};
    std::vector<std::vector<at::Tensor>> outputs(1);
    at::Tensor flatOut = outAll.view({-1});
    for (int32_t r = 0; r < g.size; ++r) outputs[0].push_back(flatOut.narrow(0, r * in.numel(), in.numel()));
    collective(g, "all_gather", {&in, &outAll}, [&] { return g.group->allgather(outputs, inputs, options); });
  }
  FT_CATCH
}

FT_EXPORT int32_t ft_pg_supports_reduce_scatter(ft_process_group group, int32_t* supported) {
  FT_TRY *supported = G(group).backend == kNccl ? 1 : 0; FT_CATCH
}

FT_EXPORT int32_t ft_pg_reduce_scatter(ft_process_group group, ft_tensor input, ft_tensor output, int32_t op) {
  FT_TRY
  GroupHandle& g = G(group);
  at::Tensor& in = T(input);
  at::Tensor& out = T(output);
  TORCH_CHECK(in.numel() == out.numel() * g.size && in.scalar_type() == out.scalar_type(), prefix(g),
              "reduce_scatter needs an input of world size x output elements (", out.numel() * g.size, " ",
              out.scalar_type(), "), got ", in.numel(), " ", in.scalar_type());
  TORCH_CHECK(g.backend == kNccl, prefix(g),
              "reduce_scatter has no native Gloo form in every libtorch FineTune supports; use the fallback of FineTune.Torch");
  c10d::ReduceScatterOptions options;
  options.reduceOp = reduce_op(op);
  options.timeout = g.timeout;
  at::Tensor flatIn = in.view({-1}), flatOut = out.view({-1});
  collective(g, "reduce_scatter", {&in, &out}, [&] { return g.group->_reduce_scatter_base(flatOut, flatIn, options); });
  FT_CATCH
}

FT_EXPORT int32_t ft_pg_all_to_all(ft_process_group group, ft_tensor input, ft_tensor output) {
  FT_TRY
  GroupHandle& g = G(group);
  at::Tensor& in = T(input);
  at::Tensor& out = T(output);
  TORCH_CHECK(in.numel() == out.numel() && in.numel() % g.size == 0 && in.scalar_type() == out.scalar_type(), prefix(g),
              "all_to_all needs input and output of the same dtype and world size x n elements, got ", in.numel(), " ",
              in.scalar_type(), " and ", out.numel(), " ", out.scalar_type());
  c10d::AllToAllOptions options;
  options.timeout = g.timeout;
  at::Tensor flatIn = in.view({-1}), flatOut = out.view({-1});
  std::vector<int64_t> equalSplits;  // empty: W equal parts, as torch.distributed.all_to_all_single does
  collective(g, "all_to_all", {&in, &out}, [&] { return g.group->alltoall_base(flatOut, flatIn, equalSplits, equalSplits, options); });
  FT_CATCH
}

FT_EXPORT int32_t ft_pg_barrier(ft_process_group group) {
  FT_TRY
  GroupHandle& g = G(group);
  c10d::BarrierOptions options;
  options.timeout = g.timeout;
  collective(g, "barrier", {}, [&] { return g.group->barrier(options); });
  FT_CATCH
}

FT_EXPORT int32_t ft_pg_is_broken(ft_process_group group, int32_t* broken) {
  FT_TRY
  GroupHandle& g = G(group);
  std::lock_guard<std::mutex> lock(g.mutex);
  *broken = g.broken.empty() ? 0 : 1;
  FT_CATCH
}
