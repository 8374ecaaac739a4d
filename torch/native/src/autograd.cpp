// Autograd: requires_grad, .grad, backward over whole graphs or sub-graphs, torch::autograd::grad, grad mode.
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/variable.h>
#include <vector>
#include "common.h"

using ft::T;
using ft::new_handle;

FT_EXPORT int32_t ft_requires_grad(ft_tensor t, int32_t* requires_grad) {
  FT_TRY *requires_grad = T(t).requires_grad() ? 1 : 0; FT_CATCH
}

FT_EXPORT int32_t ft_set_requires_grad(ft_tensor t, int32_t requires_grad) {
  FT_TRY T(t).set_requires_grad(requires_grad != 0); FT_CATCH
}

FT_EXPORT int32_t ft_grad(ft_tensor t, ft_tensor* out) { FT_TRY *out = new_handle(T(t).grad()); FT_CATCH }

// Zeroes the accumulated gradient in place (keeps its buffer); a tensor without a gradient is left as is.
FT_EXPORT int32_t ft_zero_grad(ft_tensor t) {
  FT_TRY
  auto g = T(t).grad();
  if (g.defined()) {
    at::NoGradGuard no_grad;
    g.zero_();
  }
  FT_CATCH
}

FT_EXPORT int32_t ft_set_grad(ft_tensor t, ft_tensor grad) {
  FT_TRY T(t).mutable_grad() = grad == nullptr ? at::Tensor() : T(grad); FT_CATCH
}

FT_EXPORT int32_t ft_is_leaf(ft_tensor t, int32_t* is_leaf) { FT_TRY *is_leaf = T(t).is_leaf() ? 1 : 0; FT_CATCH }

static std::vector<at::Tensor> list(const ft_tensor* handles, int32_t count, bool allow_null) {
  std::vector<at::Tensor> v;
  v.reserve(static_cast<size_t>(count));
  for (int32_t i = 0; i < count; ++i) {
    if (handles != nullptr && handles[i] != nullptr) {
      v.push_back(T(handles[i]));
    } else {
      TORCH_CHECK(allow_null, "FineTune: a null tensor was passed where a tensor is required");
      v.emplace_back();
    }
  }
  return v;
}

// Accumulates d(outputs)/d(leaf) . grad_outputs into every leaf's .grad; a null gradient means ones
// (valid for scalar outputs only, as in PyTorch).
FT_EXPORT int32_t ft_backward(const ft_tensor* outputs, const ft_tensor* grad_outputs, int32_t count,
                              int32_t retain_graph) {
  FT_TRY
  auto outs = list(outputs, count, false);
  auto grads = list(grad_outputs, count, true);
  torch::autograd::backward(outs, grads, retain_graph != 0 ? c10::optional<bool>(true) : c10::nullopt, false);
  FT_CATCH
}

// Returns d(outputs)/d(inputs) . grad_outputs without touching any .grad (torch.autograd.grad).
FT_EXPORT int32_t ft_autograd_grad(const ft_tensor* outputs, const ft_tensor* grad_outputs, int32_t output_count,
                                   const ft_tensor* inputs, int32_t input_count, int32_t retain_graph,
                                   int32_t allow_unused, ft_tensor* input_grads) {
  FT_TRY
  auto outs = list(outputs, output_count, false);
  auto grads = list(grad_outputs, output_count, true);
  auto ins = list(inputs, input_count, false);
  auto result = torch::autograd::grad(outs, ins, grads, retain_graph != 0 ? c10::optional<bool>(true) : c10::nullopt,
                                      false, allow_unused != 0);
  TORCH_CHECK(static_cast<int32_t>(result.size()) == input_count, "FineTune: autograd returned ", result.size(),
              " gradients for ", input_count, " inputs");
  for (int32_t i = 0; i < input_count; ++i) input_grads[i] = new_handle(result[static_cast<size_t>(i)]);
  FT_CATCH
}

FT_EXPORT int32_t ft_grad_enabled(int32_t* enabled) { FT_TRY *enabled = at::GradMode::is_enabled() ? 1 : 0; FT_CATCH }

FT_EXPORT int32_t ft_set_grad_enabled(int32_t enabled) { FT_TRY at::GradMode::set_enabled(enabled != 0); FT_CATCH }
