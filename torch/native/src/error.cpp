// Thread-local last error, the live-tensor counter and dtype/device code conversions.
#include "common.h"

namespace ft {

std::atomic<int64_t> g_live_tensors{0};

static thread_local std::string t_last_error;

void set_last_error(const std::string& message) { t_last_error = message; }

// Codes match FineTune.Torch.DType's declaration order.
at::ScalarType to_scalar_type(int32_t dtype) {
  switch (dtype) {
    case 0: return at::kFloat;
    case 1: return at::kDouble;
    case 2: return at::kBFloat16;
    case 3: return at::kHalf;
    case 4: return at::kLong;
    case 5: return at::kInt;
    case 6: return at::kByte;
    case 7: return at::kBool;
  }
  TORCH_CHECK(false, "FineTune: unknown dtype code ", dtype);
}

int32_t from_scalar_type(at::ScalarType type) {
  switch (type) {
    case at::kFloat: return 0;
    case at::kDouble: return 1;
    case at::kBFloat16: return 2;
    case at::kHalf: return 3;
    case at::kLong: return 4;
    case at::kInt: return 5;
    case at::kByte: return 6;
    case at::kBool: return 7;
    default: return -1;
  }
}

at::Device to_device(int32_t device_type, int32_t device_index) {
  if (device_type == 0) return at::Device(at::kCPU);
  TORCH_CHECK(device_type == 1, "FineTune: unknown device type code ", device_type);
  TORCH_CHECK(device_index >= 0, "FineTune: a CUDA device index must be >= 0, got ", device_index);
  return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(device_index));
}

}  // namespace ft

FT_EXPORT const char* ft_last_error() { return ft::t_last_error.c_str(); }

FT_EXPORT int64_t ft_live_tensor_count() { return ft::g_live_tensors.load(std::memory_order_relaxed); }

FT_EXPORT int32_t ft_test_throw(int32_t kind) {
  FT_TRY
  if (kind == 0) TORCH_CHECK(false, "FineTune test error from TORCH_CHECK");
  if (kind == 1) throw std::runtime_error("FineTune test error from std::runtime_error");
  throw 42;
  FT_CATCH
}
