// Internal helpers shared by the shim's translation units: handle conversion, the FT_TRY/FT_CATCH
// error plumbing and the dtype/device codes of the C ABI. Not part of the exported API (see shim.h).
#pragma once
#include <ATen/ATen.h>
#include <atomic>
#include <string>
#include "shim.h"

namespace ft {

// Records the message of the exception being handled as this thread's last error.
void set_last_error(const std::string& message);

// Number of at::Tensor objects currently owned by handles (new_handle .. ft_tensor_free).
extern std::atomic<int64_t> g_live_tensors;

inline at::Tensor& T(ft_tensor h) {
  TORCH_CHECK(h != nullptr, "FineTune: a null tensor handle was passed to the native shim");
  return *reinterpret_cast<at::Tensor*>(h);
}

// Wraps a tensor in a new heap handle; an undefined tensor becomes a null handle.
inline ft_tensor new_handle(at::Tensor t) {
  if (!t.defined()) return nullptr;
  auto* p = new at::Tensor(std::move(t));
  g_live_tensors.fetch_add(1, std::memory_order_relaxed);
  return reinterpret_cast<ft_tensor>(p);
}

at::ScalarType to_scalar_type(int32_t dtype);
int32_t from_scalar_type(at::ScalarType type);
at::Device to_device(int32_t device_type, int32_t device_index);

inline at::IntArrayRef dims(const int64_t* values, int32_t count) {
  return at::IntArrayRef(values, static_cast<size_t>(count));
}

}  // namespace ft

// Every exported function body sits between FT_TRY and FT_CATCH: exceptions never cross the C ABI.
// c10::Error carries a C++ backtrace in what(); what_without_backtrace() is the message users need.
#define FT_TRY try {
#define FT_CATCH                                          \
  return FT_OK;                                           \
  }                                                       \
  catch (const c10::Error& e) {                           \
    ft::set_last_error(e.what_without_backtrace());       \
    return FT_ERROR;                                      \
  }                                                       \
  catch (const std::exception& e) {                       \
    ft::set_last_error(e.what());                         \
    return FT_ERROR;                                      \
  }                                                       \
  catch (...) {                                           \
    ft::set_last_error("unknown C++ exception in the FineTune native shim"); \
    return FT_ERROR;                                      \
  }
