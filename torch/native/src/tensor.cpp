// Tensor lifetime, metadata, creation, host copies, conversion and in-place updates.
#include <ATen/CPUGeneratorImpl.h>
#include <cstring>
#include "common.h"

using ft::T;
using ft::new_handle;

FT_EXPORT void ft_tensor_free(ft_tensor t) {
  if (t == nullptr) return;
  delete reinterpret_cast<at::Tensor*>(t);
  ft::g_live_tensors.fetch_sub(1, std::memory_order_relaxed);
}

FT_EXPORT int32_t ft_tensor_rank(ft_tensor t, int32_t* rank) {
  FT_TRY *rank = static_cast<int32_t>(T(t).dim()); FT_CATCH
}

FT_EXPORT int32_t ft_tensor_shape(ft_tensor t, int64_t* shape, int32_t capacity) {
  FT_TRY
  auto sizes = T(t).sizes();
  TORCH_CHECK(static_cast<int64_t>(sizes.size()) <= capacity, "FineTune: shape buffer too small");
  for (size_t i = 0; i < sizes.size(); ++i) shape[i] = sizes[i];
  FT_CATCH
}

FT_EXPORT int32_t ft_tensor_strides(ft_tensor t, int64_t* strides, int32_t capacity) {
  FT_TRY
  auto s = T(t).strides();
  TORCH_CHECK(static_cast<int64_t>(s.size()) <= capacity, "FineTune: strides buffer too small");
  for (size_t i = 0; i < s.size(); ++i) strides[i] = s[i];
  FT_CATCH
}

FT_EXPORT int32_t ft_tensor_numel(ft_tensor t, int64_t* numel) { FT_TRY *numel = T(t).numel(); FT_CATCH }

FT_EXPORT int32_t ft_tensor_element_size(ft_tensor t, int64_t* byte_count) {
  FT_TRY *byte_count = static_cast<int64_t>(T(t).element_size()); FT_CATCH
}

FT_EXPORT int32_t ft_tensor_dtype(ft_tensor t, int32_t* dtype) {
  FT_TRY *dtype = ft::from_scalar_type(T(t).scalar_type()); FT_CATCH
}

FT_EXPORT int32_t ft_tensor_device(ft_tensor t, int32_t* device_type, int32_t* device_index) {
  FT_TRY
  auto d = T(t).device();
  *device_type = d.is_cpu() ? 0 : d.is_cuda() ? 1 : 2;
  *device_index = d.has_index() ? d.index() : (d.is_cpu() ? 0 : -1);
  FT_CATCH
}

FT_EXPORT int32_t ft_tensor_data_ptr(ft_tensor t, void** data) { FT_TRY *data = T(t).data_ptr(); FT_CATCH }

FT_EXPORT int32_t ft_tensor_is_contiguous(ft_tensor t, int32_t* contiguous) {
  FT_TRY *contiguous = T(t).is_contiguous() ? 1 : 0; FT_CATCH
}

static at::TensorOptions options(int32_t dtype, int32_t device_type, int32_t device_index) {
  return at::TensorOptions().dtype(ft::to_scalar_type(dtype)).device(ft::to_device(device_type, device_index));
}

static c10::optional<at::Generator> generator(ft_generator gen) {
  if (gen == nullptr) return c10::nullopt;
  return *reinterpret_cast<at::Generator*>(gen);
}

FT_EXPORT int32_t ft_empty(const int64_t* shape, int32_t rank, int32_t dtype, int32_t device_type, int32_t device_index,
                           ft_tensor* out) {
  FT_TRY *out = new_handle(at::empty(ft::dims(shape, rank), options(dtype, device_type, device_index))); FT_CATCH
}

FT_EXPORT int32_t ft_full(const int64_t* shape, int32_t rank, double value, int32_t dtype, int32_t device_type,
                          int32_t device_index, ft_tensor* out) {
  FT_TRY *out = new_handle(at::full(ft::dims(shape, rank), value, options(dtype, device_type, device_index))); FT_CATCH
}

FT_EXPORT int32_t ft_arange(double start, double end, double step, int32_t dtype, int32_t device_type,
                            int32_t device_index, ft_tensor* out) {
  FT_TRY *out = new_handle(at::arange(start, end, step, options(dtype, device_type, device_index))); FT_CATCH
}

// Random numbers are drawn on the CPU with the given generator (seeded, device-independent) and then moved.
FT_EXPORT int32_t ft_randn(const int64_t* shape, int32_t rank, ft_generator gen, int32_t dtype, int32_t device_type,
                           int32_t device_index, ft_tensor* out) {
  FT_TRY
  auto cpu = at::randn(ft::dims(shape, rank), generator(gen), options(dtype, 0, 0));
  *out = new_handle(cpu.to(ft::to_device(device_type, device_index)));
  FT_CATCH
}

FT_EXPORT int32_t ft_rand(const int64_t* shape, int32_t rank, ft_generator gen, int32_t dtype, int32_t device_type,
                          int32_t device_index, ft_tensor* out) {
  FT_TRY
  auto cpu = at::rand(ft::dims(shape, rank), generator(gen), options(dtype, 0, 0));
  *out = new_handle(cpu.to(ft::to_device(device_type, device_index)));
  FT_CATCH
}

FT_EXPORT int32_t ft_from_blob(void* data, const int64_t* shape, int32_t rank, int32_t dtype, ft_tensor* out) {
  FT_TRY
  TORCH_CHECK(data != nullptr, "FineTune: FromPointer needs a non-null pointer");
  *out = new_handle(at::from_blob(data, ft::dims(shape, rank), options(dtype, 0, 0)));
  FT_CATCH
}

FT_EXPORT int32_t ft_from_host(const void* data, int64_t byte_count, const int64_t* shape, int32_t rank, int32_t dtype,
                               ft_tensor* out) {
  FT_TRY
  auto t = at::empty(ft::dims(shape, rank), options(dtype, 0, 0));
  TORCH_CHECK(static_cast<int64_t>(t.nbytes()) == byte_count, "FineTune: shape ", t.sizes(), " needs ", t.nbytes(),
              " bytes but ", byte_count, " were given");
  if (byte_count > 0) std::memcpy(t.data_ptr(), data, static_cast<size_t>(byte_count));
  *out = new_handle(std::move(t));
  FT_CATCH
}

FT_EXPORT int32_t ft_copy_to_host(ft_tensor t, void* data, int64_t byte_count) {
  FT_TRY
  auto& src = T(t);
  int64_t need = src.numel() * static_cast<int64_t>(src.element_size());
  TORCH_CHECK(need == byte_count, "FineTune: tensor of shape ", src.sizes(), " holds ", need,
              " bytes but the destination has ", byte_count);
  if (need == 0) return FT_OK;
  auto dst = at::from_blob(data, src.sizes(), at::TensorOptions().dtype(src.scalar_type()));
  dst.copy_(src.detach());
  FT_CATCH
}

FT_EXPORT int32_t ft_copy_from_host(ft_tensor t, const void* data, int64_t byte_count) {
  FT_TRY
  auto& dst = T(t);
  int64_t need = dst.numel() * static_cast<int64_t>(dst.element_size());
  TORCH_CHECK(need == byte_count, "FineTune: tensor of shape ", dst.sizes(), " holds ", need,
              " bytes but the source has ", byte_count);
  if (need == 0) return FT_OK;
  auto src = at::from_blob(const_cast<void*>(data), dst.sizes(), at::TensorOptions().dtype(dst.scalar_type()));
  at::NoGradGuard no_grad;
  dst.copy_(src);
  FT_CATCH
}

FT_EXPORT int32_t ft_to(ft_tensor t, int32_t device_type, int32_t device_index, int32_t dtype, int32_t non_blocking,
                        ft_tensor* out) {
  FT_TRY
  auto& src = T(t);
  auto type = dtype < 0 ? src.scalar_type() : ft::to_scalar_type(dtype);
  auto device = device_type < 0 ? src.device() : ft::to_device(device_type, device_index);
  *out = new_handle(src.to(device, type, non_blocking != 0, /*copy=*/false));
  FT_CATCH
}

FT_EXPORT int32_t ft_copy_(ft_tensor dst, ft_tensor src, int32_t non_blocking) {
  FT_TRY T(dst).copy_(T(src), non_blocking != 0); FT_CATCH
}

FT_EXPORT int32_t ft_add_(ft_tensor t, ft_tensor other, double alpha) { FT_TRY T(t).add_(T(other), alpha); FT_CATCH }

FT_EXPORT int32_t ft_mul_scalar_(ft_tensor t, double value) { FT_TRY T(t).mul_(value); FT_CATCH }

FT_EXPORT int32_t ft_fill_(ft_tensor t, double value) { FT_TRY T(t).fill_(value); FT_CATCH }
