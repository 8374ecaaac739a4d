// Runtime services: seeded generators, the global seed, intra-op threads, and libtorch's own AdamW
// (the reference and benchmark baseline for FineTune's optimizers). The only TU that needs torch/torch.h.
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <torch/optim/adamw.h>
#include <vector>
#include "common.h"

using ft::T;

FT_EXPORT int32_t ft_generator_new(uint64_t seed, ft_generator* out) {
  FT_TRY *out = reinterpret_cast<ft_generator>(new at::Generator(at::detail::createCPUGenerator(seed))); FT_CATCH
}

FT_EXPORT void ft_generator_free(ft_generator gen) { delete reinterpret_cast<at::Generator*>(gen); }

// Seeds the default generators of every device (torch.manual_seed).
FT_EXPORT int32_t ft_manual_seed(uint64_t seed) { FT_TRY at::manual_seed(seed); FT_CATCH }

FT_EXPORT int32_t ft_set_num_threads(int32_t count) {
  FT_TRY
  TORCH_CHECK(count > 0, "FineTune: the number of threads must be positive, got ", count);
  at::set_num_threads(count);
  FT_CATCH
}

FT_EXPORT int32_t ft_get_num_threads(int32_t* count) { FT_TRY *count = at::get_num_threads(); FT_CATCH }

static torch::optim::AdamW& adamw(ft_optimizer opt) {
  TORCH_CHECK(opt != nullptr, "FineTune: null optimizer handle");
  return *reinterpret_cast<torch::optim::AdamW*>(opt);
}

FT_EXPORT int32_t ft_adamw_new(const ft_tensor* params, int32_t count, double lr, double beta1, double beta2, double eps,
                               double weight_decay, ft_optimizer* out) {
  FT_TRY
  std::vector<at::Tensor> list;
  for (int32_t i = 0; i < count; ++i) list.push_back(T(params[i]));
  auto options = torch::optim::AdamWOptions(lr).betas(std::make_tuple(beta1, beta2)).eps(eps).weight_decay(weight_decay);
  *out = reinterpret_cast<ft_optimizer>(new torch::optim::AdamW(list, options));
  FT_CATCH
}

FT_EXPORT void ft_adamw_free(ft_optimizer opt) { delete reinterpret_cast<torch::optim::AdamW*>(opt); }

FT_EXPORT int32_t ft_adamw_step(ft_optimizer opt) { FT_TRY adamw(opt).step(); FT_CATCH }

FT_EXPORT int32_t ft_adamw_zero_grad(ft_optimizer opt) { FT_TRY adamw(opt).zero_grad(); FT_CATCH }

FT_EXPORT int32_t ft_adamw_set_lr(ft_optimizer opt, double lr) {
  FT_TRY
  for (auto& group : adamw(opt).param_groups())
    static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
  FT_CATCH
}

FT_EXPORT int32_t ft_adamw_get_lr(ft_optimizer opt, double* lr) {
  FT_TRY
  auto& groups = adamw(opt).param_groups();
  TORCH_CHECK(!groups.empty(), "FineTune: optimizer has no parameter groups");
  *lr = static_cast<torch::optim::AdamWOptions&>(groups[0].options()).lr();
  FT_CATCH
}
