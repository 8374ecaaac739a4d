// CUDA services: availability, streams, events, host-memory registration and caching-allocator stats.
// Compiled with real bodies only when CMake found a CUDA-enabled libtorch (FT_WITH_CUDA); otherwise every
// function except the availability queries fails with a "built without CUDA" error.
//
// Only c10/cuda headers and the CUDA runtime API are used, the parts that stayed put from libtorch 1.13 to 2.x:
// at::cuda::CUDAEvent moved to c10::cuda in 2.x (pytorch#158219) and its header pulls in cuBLAS/cuSPARSE/cuSOLVER
// headers, so events are a plain cudaEvent_t owned here.
#include "common.h"

#ifdef FT_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>

static void check_cuda(cudaError_t status, const char* what) {
  TORCH_CHECK(status == cudaSuccess, "FineTune: ", what, " failed: ", cudaGetErrorString(status));
}

static c10::cuda::CUDAStream& S(ft_cuda_stream s) {
  TORCH_CHECK(s != nullptr, "FineTune: null CUDA stream handle");
  return *reinterpret_cast<c10::cuda::CUDAStream*>(s);
}

// A CUDA event created on first record (on the recording stream's device, as CUDA requires), like torch.cuda.Event.
struct FtCudaEvent {
  cudaEvent_t event = nullptr;
  c10::DeviceIndex device = -1;
  unsigned int flags = cudaEventDisableTiming;
};

static FtCudaEvent& E(ft_cuda_event e) {
  TORCH_CHECK(e != nullptr, "FineTune: null CUDA event handle");
  return *reinterpret_cast<FtCudaEvent*>(e);
}

#define FT_CUDA_ONLY(...) FT_TRY __VA_ARGS__ FT_CATCH
#else
#define FT_CUDA_ONLY(...) \
  FT_TRY TORCH_CHECK(false, "FineTune was built without CUDA (the libtorch it was compiled against has no CUDA); rebuild with FINETUNE_LIBTORCH pointing at a CUDA libtorch"); FT_CATCH
#endif

FT_EXPORT int32_t ft_cuda_is_available(int32_t* available) {
  FT_TRY
#ifdef FT_WITH_CUDA
  *available = c10::cuda::device_count() > 0 ? 1 : 0;
#else
  *available = 0;
#endif
  FT_CATCH
}

FT_EXPORT int32_t ft_cuda_device_count(int32_t* count) {
  FT_TRY
#ifdef FT_WITH_CUDA
  *count = static_cast<int32_t>(c10::cuda::device_count());
#else
  *count = 0;
#endif
  FT_CATCH
}

FT_EXPORT int32_t ft_cuda_synchronize(int32_t device_index) {
  FT_CUDA_ONLY(
    c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device_index));
    check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  )
}

FT_EXPORT int32_t ft_cuda_stream_new(int32_t device_index, int32_t high_priority, ft_cuda_stream* out) {
  FT_CUDA_ONLY(
    auto s = c10::cuda::getStreamFromPool(high_priority != 0, static_cast<c10::DeviceIndex>(device_index));
    *out = reinterpret_cast<ft_cuda_stream>(new c10::cuda::CUDAStream(s));
  )
}

FT_EXPORT int32_t ft_cuda_stream_current(int32_t device_index, ft_cuda_stream* out) {
  FT_CUDA_ONLY(
    auto s = c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(device_index));
    *out = reinterpret_cast<ft_cuda_stream>(new c10::cuda::CUDAStream(s));
  )
}

FT_EXPORT void ft_cuda_stream_free(ft_cuda_stream stream) {
#ifdef FT_WITH_CUDA
  delete reinterpret_cast<c10::cuda::CUDAStream*>(stream);
#else
  (void)stream;
#endif
}

// Makes the stream current for its device on this thread (what torch.cuda.stream(s) does).
FT_EXPORT int32_t ft_cuda_stream_set_current(ft_cuda_stream stream) {
  FT_CUDA_ONLY(c10::cuda::setCurrentCUDAStream(S(stream));)
}

FT_EXPORT int32_t ft_cuda_stream_synchronize(ft_cuda_stream stream) { FT_CUDA_ONLY(S(stream).synchronize();) }

FT_EXPORT int32_t ft_cuda_stream_query(ft_cuda_stream stream, int32_t* done) {
  FT_CUDA_ONLY(*done = S(stream).query() ? 1 : 0;)
}

FT_EXPORT int32_t ft_cuda_event_new(int32_t enable_timing, ft_cuda_event* out) {
  FT_CUDA_ONLY(
    auto* ev = new FtCudaEvent();
    ev->flags = enable_timing != 0 ? cudaEventDefault : cudaEventDisableTiming;
    *out = reinterpret_cast<ft_cuda_event>(ev);
  )
}

FT_EXPORT void ft_cuda_event_free(ft_cuda_event handle) {
#ifdef FT_WITH_CUDA
  auto* ev = reinterpret_cast<FtCudaEvent*>(handle);
  if (ev == nullptr) return;
  if (ev->event != nullptr) {
    // Destroyed on its own device so that no context is created on another one; a failure cannot be reported here.
    c10::cuda::CUDAGuard guard(ev->device);
    (void)cudaEventDestroy(ev->event);
  }
  delete ev;
#else
  (void)handle;
#endif
}

FT_EXPORT int32_t ft_cuda_event_record(ft_cuda_event handle, ft_cuda_stream stream) {
  FT_CUDA_ONLY(
    auto& ev = E(handle);
    auto& s = S(stream);
    c10::cuda::CUDAGuard guard(s.device_index());
    if (ev.event == nullptr) {
      check_cuda(cudaEventCreateWithFlags(&ev.event, ev.flags), "cudaEventCreateWithFlags");
      ev.device = s.device_index();
    }
    TORCH_CHECK(ev.device == s.device_index(), "FineTune: a CUDA event created on device ", static_cast<int>(ev.device),
                " cannot be recorded on a stream of device ", static_cast<int>(s.device_index()));
    check_cuda(cudaEventRecord(ev.event, s.stream()), "cudaEventRecord");
  )
}

// Makes the stream wait for the event (device side; the host does not block). An event never recorded is complete.
FT_EXPORT int32_t ft_cuda_event_wait(ft_cuda_event handle, ft_cuda_stream stream) {
  FT_CUDA_ONLY(
    auto& ev = E(handle);
    auto& s = S(stream);
    if (ev.event != nullptr) {
      c10::cuda::CUDAGuard guard(s.device_index());
      check_cuda(cudaStreamWaitEvent(s.stream(), ev.event, 0), "cudaStreamWaitEvent");
    }
  )
}

FT_EXPORT int32_t ft_cuda_event_synchronize(ft_cuda_event handle) {
  FT_CUDA_ONLY(
    auto& ev = E(handle);
    if (ev.event != nullptr) check_cuda(cudaEventSynchronize(ev.event), "cudaEventSynchronize");
  )
}

FT_EXPORT int32_t ft_cuda_event_query(ft_cuda_event handle, int32_t* done) {
  FT_CUDA_ONLY(
    auto& ev = E(handle);
    *done = 1;
    if (ev.event != nullptr) {
      cudaError_t status = cudaEventQuery(ev.event);
      if (status == cudaErrorNotReady) {
        (void)cudaGetLastError();  // not an error: clear it so the next CUDA call does not report it
        *done = 0;
      } else {
        check_cuda(status, "cudaEventQuery");
      }
    }
  )
}

FT_EXPORT int32_t ft_cuda_event_elapsed_ms(ft_cuda_event start, ft_cuda_event end, float* ms) {
  FT_CUDA_ONLY(
    auto& a = E(start);
    auto& b = E(end);
    TORCH_CHECK((a.flags & cudaEventDisableTiming) == 0 && (b.flags & cudaEventDisableTiming) == 0,
                "FineTune: both CUDA events must be created with timing enabled to measure elapsed time");
    TORCH_CHECK(a.event != nullptr && b.event != nullptr, "FineTune: both CUDA events must be recorded before measuring elapsed time");
    c10::cuda::CUDAGuard guard(a.device);
    check_cuda(cudaEventElapsedTime(ms, a.event, b.event), "cudaEventElapsedTime");
  )
}

// Pins caller-owned host memory in place (no second allocation), so device copies from it can be asynchronous.
FT_EXPORT int32_t ft_cuda_host_register(void* data, int64_t byte_count) {
  FT_CUDA_ONLY(
    TORCH_CHECK(data != nullptr && byte_count > 0, "FineTune: HostRegister needs a non-null pointer and a positive byte count");
    check_cuda(cudaHostRegister(data, static_cast<size_t>(byte_count), cudaHostRegisterDefault), "cudaHostRegister");
  )
}

FT_EXPORT int32_t ft_cuda_host_unregister(void* data) {
  FT_CUDA_ONLY(check_cuda(cudaHostUnregister(data), "cudaHostUnregister");)
}

FT_EXPORT int32_t ft_cuda_memory_stats(int32_t device_index, int64_t* stats6) {
  FT_CUDA_ONLY(
    const auto index = static_cast<c10::DeviceIndex>(device_index);
    // 1.13 returns CUDACachingAllocator::DeviceStats, 2.x c10::CachingDeviceAllocator::DeviceStats: same fields.
    auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(index);
    // Index 0 is StatType::AGGREGATE in every libtorch; the enum itself moved namespaces in 2.x.
    const size_t all = 0;
    stats6[0] = stats.allocated_bytes[all].current;
    stats6[1] = stats.allocated_bytes[all].peak;
    stats6[2] = stats.reserved_bytes[all].current;
    stats6[3] = stats.reserved_bytes[all].peak;
    c10::cuda::CUDAGuard guard(index);
    size_t free_bytes = 0, total_bytes = 0;
    check_cuda(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");
    stats6[4] = static_cast<int64_t>(free_bytes);
    stats6[5] = static_cast<int64_t>(total_bytes);
  )
}
