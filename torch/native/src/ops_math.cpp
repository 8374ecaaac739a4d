// Elementwise math, reductions, softmax and masking. Every op is differentiable through ATen's autograd.
#include "common.h"

using ft::T;
using ft::new_handle;

FT_EXPORT int32_t ft_unary(int32_t op, ft_tensor t, ft_tensor* out) {
  FT_TRY
  const auto& x = T(t);
  at::Tensor r;
  switch (op) {
    case FT_UNARY_NEG: r = at::neg(x); break;
    case FT_UNARY_RSQRT: r = at::rsqrt(x); break;
    case FT_UNARY_SQRT: r = at::sqrt(x); break;
    case FT_UNARY_EXP: r = at::exp(x); break;
    case FT_UNARY_LOG: r = at::log(x); break;
    case FT_UNARY_SILU: r = at::silu(x); break;
    case FT_UNARY_CONTIGUOUS: r = x.contiguous(); break;
    case FT_UNARY_CLONE: r = x.clone(); break;
    case FT_UNARY_DETACH: r = x.detach(); break;
    case FT_UNARY_ABS: r = at::abs(x); break;
    case FT_UNARY_SIGMOID: r = at::sigmoid(x); break;
    case FT_UNARY_TANH: r = at::tanh(x); break;
    case FT_UNARY_COS: r = at::cos(x); break;
    case FT_UNARY_SIN: r = at::sin(x); break;
    default: TORCH_CHECK(false, "FineTune: unknown unary op code ", op);
  }
  *out = new_handle(std::move(r));
  FT_CATCH
}

FT_EXPORT int32_t ft_binary(int32_t op, ft_tensor a, ft_tensor b, ft_tensor* out) {
  FT_TRY
  const auto& x = T(a);
  const auto& y = T(b);
  at::Tensor r;
  switch (op) {
    case FT_BINARY_ADD: r = at::add(x, y); break;
    case FT_BINARY_SUB: r = at::sub(x, y); break;
    case FT_BINARY_MUL: r = at::mul(x, y); break;
    case FT_BINARY_DIV: r = at::div(x, y); break;
    default: TORCH_CHECK(false, "FineTune: unknown tensor-tensor op code ", op);
  }
  *out = new_handle(std::move(r));
  FT_CATCH
}

FT_EXPORT int32_t ft_binary_scalar(int32_t op, ft_tensor a, double value, ft_tensor* out) {
  FT_TRY
  const auto& x = T(a);
  at::Tensor r;
  switch (op) {
    case FT_BINARY_ADD: r = at::add(x, value); break;
    case FT_BINARY_SUB: r = at::sub(x, value); break;
    case FT_BINARY_MUL: r = at::mul(x, value); break;
    case FT_BINARY_DIV: r = at::div(x, value); break;
    case FT_BINARY_POW: r = at::pow(x, value); break;
    case FT_BINARY_RSUB: r = at::rsub(x, value); break;
    case FT_BINARY_RDIV: r = at::mul(at::reciprocal(x), value); break;
    default: TORCH_CHECK(false, "FineTune: unknown tensor-scalar op code ", op);
  }
  *out = new_handle(std::move(r));
  FT_CATCH
}

FT_EXPORT int32_t ft_mean(ft_tensor t, const int64_t* dims, int32_t dim_count, int32_t keep_dim, ft_tensor* out) {
  FT_TRY
  *out = new_handle(dim_count < 0 ? at::mean(T(t)) : at::mean(T(t), ft::dims(dims, dim_count), keep_dim != 0));
  FT_CATCH
}

FT_EXPORT int32_t ft_sum(ft_tensor t, const int64_t* dims, int32_t dim_count, int32_t keep_dim, ft_tensor* out) {
  FT_TRY
  *out = new_handle(dim_count < 0 ? at::sum(T(t)) : at::sum(T(t), ft::dims(dims, dim_count), keep_dim != 0));
  FT_CATCH
}

FT_EXPORT int32_t ft_max_all(ft_tensor t, ft_tensor* out) { FT_TRY *out = new_handle(at::max(T(t))); FT_CATCH }

FT_EXPORT int32_t ft_argmax(ft_tensor t, int64_t dim, int32_t keep_dim, ft_tensor* out) {
  FT_TRY *out = new_handle(at::argmax(T(t), dim, keep_dim != 0)); FT_CATCH
}

FT_EXPORT int32_t ft_softmax(ft_tensor t, int64_t dim, ft_tensor* out) {
  FT_TRY *out = new_handle(at::softmax(T(t), dim)); FT_CATCH
}

FT_EXPORT int32_t ft_log_softmax(ft_tensor t, int64_t dim, ft_tensor* out) {
  FT_TRY *out = new_handle(at::log_softmax(T(t), dim)); FT_CATCH
}

FT_EXPORT int32_t ft_masked_fill(ft_tensor t, ft_tensor mask, double value, ft_tensor* out) {
  FT_TRY *out = new_handle(at::masked_fill(T(t), T(mask), value)); FT_CATCH
}

FT_EXPORT int32_t ft_where(ft_tensor cond, ft_tensor a, ft_tensor b, ft_tensor* out) {
  FT_TRY *out = new_handle(at::where(T(cond), T(a), T(b))); FT_CATCH
}

FT_EXPORT int32_t ft_triu(ft_tensor t, int64_t k, ft_tensor* out) { FT_TRY *out = new_handle(at::triu(T(t), k)); FT_CATCH }

FT_EXPORT int32_t ft_tril(ft_tensor t, int64_t k, ft_tensor* out) { FT_TRY *out = new_handle(at::tril(T(t), k)); FT_CATCH }

FT_EXPORT int32_t ft_equal(ft_tensor a, ft_tensor b, int32_t* equal) {
  FT_TRY *equal = at::equal(T(a), T(b)) ? 1 : 0; FT_CATCH
}
