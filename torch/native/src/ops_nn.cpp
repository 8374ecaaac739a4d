// Layer ops of a Llama-family model: linear, matmul/bmm, embedding, cross-entropy, attention.
#include <cmath>
#include <limits>
#include <torch/version.h>
#include "common.h"

using ft::T;
using ft::new_handle;

FT_EXPORT int32_t ft_linear(ft_tensor x, ft_tensor w, ft_tensor b, ft_tensor* out) {
  FT_TRY
  c10::optional<at::Tensor> bias;
  if (b != nullptr) bias = T(b);
  *out = new_handle(at::linear(T(x), T(w), bias));
  FT_CATCH
}

FT_EXPORT int32_t ft_matmul(ft_tensor a, ft_tensor b, ft_tensor* out) { FT_TRY *out = new_handle(at::matmul(T(a), T(b))); FT_CATCH }

FT_EXPORT int32_t ft_bmm(ft_tensor a, ft_tensor b, ft_tensor* out) { FT_TRY *out = new_handle(at::bmm(T(a), T(b))); FT_CATCH }

FT_EXPORT int32_t ft_embedding(ft_tensor weight, ft_tensor ids, ft_tensor* out) {
  FT_TRY *out = new_handle(at::embedding(T(weight), T(ids))); FT_CATCH
}

FT_EXPORT int32_t ft_cross_entropy(ft_tensor logits, ft_tensor targets, int64_t ignore_index, int32_t reduction,
                                   ft_tensor* out) {
  FT_TRY
  TORCH_CHECK(reduction >= 0 && reduction <= 2, "FineTune: reduction code must be 0 (none), 1 (mean) or 2 (sum)");
  *out = new_handle(at::cross_entropy_loss(T(logits), T(targets), c10::nullopt, reduction, ignore_index, 0.0));
  FT_CATCH
}

#if TORCH_VERSION_MAJOR >= 2
#define FT_HAS_SDPA 1
#endif

// softmax(q k^T / sqrt(d) + causal mask) v over (..., L, d) inputs.
// reference: "Attention Is All You Need" (Vaswani et al., 2017), eq. 1; the causal mask hides keys j > i.
// torch 1.13 has no at::scaled_dot_product_attention, so this is the path there and the reference elsewhere.
static at::Tensor manual_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, bool is_causal) {
  const auto head_dim = q.size(-1);
  auto scores = at::matmul(q, k.transpose(-2, -1)) * (1.0 / std::sqrt(static_cast<double>(head_dim)));
  if (is_causal) {
    const auto l = q.size(-2);
    const auto s = k.size(-2);
    auto mask = at::ones({l, s}, q.options().dtype(at::kBool)).triu(1);
    scores = scores.masked_fill(mask, -std::numeric_limits<double>::infinity());
  }
  return at::matmul(at::softmax(scores, -1), v);
}

FT_EXPORT int32_t ft_scaled_dot_product_attention(ft_tensor q, ft_tensor k, ft_tensor v, int32_t is_causal,
                                                  ft_tensor* out) {
  FT_TRY
#ifdef FT_HAS_SDPA
  *out = new_handle(at::scaled_dot_product_attention(T(q), T(k), T(v), c10::nullopt, 0.0, is_causal != 0));
#else
  *out = new_handle(manual_attention(T(q), T(k), T(v), is_causal != 0));
#endif
  FT_CATCH
}

FT_EXPORT int32_t ft_sdpa_is_fused(int32_t* fused) {
  FT_TRY
#ifdef FT_HAS_SDPA
  *fused = 1;
  (void)&manual_attention;
#else
  *fused = 0;
#endif
  FT_CATCH
}
