// In-place arithmetic for optimizer updates (mul_, div_, addcmul_, addcdiv_, lerp_, sqrt_, clamp_),
// clamp/norm/stack, and the finite check used by overflow detection.
#include <vector>
#include "common.h"

using ft::T;
using ft::new_handle;

FT_EXPORT int32_t ft_unary_(int32_t op, ft_tensor t) {
  FT_TRY
  auto& x = T(t);
  switch (op) {
    case FT_UNARY_NEG: x.neg_(); break;
    case FT_UNARY_RSQRT: x.rsqrt_(); break;
    case FT_UNARY_SQRT: x.sqrt_(); break;
    case FT_UNARY_EXP: x.exp_(); break;
    case FT_UNARY_LOG: x.log_(); break;
    case FT_UNARY_SILU: at::silu_(x); break;
    case FT_UNARY_ABS: x.abs_(); break;
    case FT_UNARY_SIGMOID: x.sigmoid_(); break;
    case FT_UNARY_TANH: x.tanh_(); break;
    case FT_UNARY_COS: x.cos_(); break;
    case FT_UNARY_SIN: x.sin_(); break;
    default: TORCH_CHECK(false, "FineTune: op code ", op, " has no in-place form");
  }
  FT_CATCH
}

FT_EXPORT int32_t ft_binary_(int32_t op, ft_tensor t, ft_tensor other) {
  FT_TRY
  auto& x = T(t);
  const auto& y = T(other);
  switch (op) {
    case FT_BINARY_ADD: x.add_(y); break;
    case FT_BINARY_SUB: x.sub_(y); break;
    case FT_BINARY_MUL: x.mul_(y); break;
    case FT_BINARY_DIV: x.div_(y); break;
    default: TORCH_CHECK(false, "FineTune: op code ", op, " has no in-place tensor-tensor form");
  }
  FT_CATCH
}

FT_EXPORT int32_t ft_addcmul_(ft_tensor t, ft_tensor a, ft_tensor b, double value) {
  FT_TRY T(t).addcmul_(T(a), T(b), value); FT_CATCH
}

FT_EXPORT int32_t ft_addcdiv_(ft_tensor t, ft_tensor a, ft_tensor b, double value) {
  FT_TRY T(t).addcdiv_(T(a), T(b), value); FT_CATCH
}

FT_EXPORT int32_t ft_lerp_(ft_tensor t, ft_tensor end, double weight) { FT_TRY T(t).lerp_(T(end), weight); FT_CATCH }

static c10::optional<at::Scalar> bound(int32_t has, double value) {
  if (has == 0) return c10::nullopt;
  return at::Scalar(value);
}

FT_EXPORT int32_t ft_clamp(ft_tensor t, int32_t has_min, double min, int32_t has_max, double max, ft_tensor* out) {
  FT_TRY
  TORCH_CHECK(has_min != 0 || has_max != 0, "FineTune: Clamp needs a minimum, a maximum or both");
  *out = new_handle(at::clamp(T(t), bound(has_min, min), bound(has_max, max)));
  FT_CATCH
}

FT_EXPORT int32_t ft_clamp_(ft_tensor t, int32_t has_min, double min, int32_t has_max, double max) {
  FT_TRY
  TORCH_CHECK(has_min != 0 || has_max != 0, "FineTune: Clamp needs a minimum, a maximum or both");
  at::clamp_(T(t), bound(has_min, min), bound(has_max, max));
  FT_CATCH
}

FT_EXPORT int32_t ft_norm(ft_tensor t, double p, ft_tensor* out) { FT_TRY *out = new_handle(at::norm(T(t), p)); FT_CATCH }

FT_EXPORT int32_t ft_all_finite(ft_tensor t, int32_t* all_finite) {
  FT_TRY *all_finite = at::isfinite(T(t)).all().item<bool>() ? 1 : 0; FT_CATCH
}

FT_EXPORT int32_t ft_stack(const ft_tensor* tensors, int32_t count, int64_t dim, ft_tensor* out) {
  FT_TRY
  TORCH_CHECK(count > 0, "FineTune: Stack needs at least one tensor");
  std::vector<at::Tensor> list;
  list.reserve(static_cast<size_t>(count));
  for (int32_t i = 0; i < count; ++i) list.push_back(T(tensors[i]));
  *out = new_handle(at::stack(list, dim));
  FT_CATCH
}
