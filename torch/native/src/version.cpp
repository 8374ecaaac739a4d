// Library identity: version of the shim's C ABI and of the libtorch it was built against.
#include <torch/version.h>
#include "shim.h"

FT_EXPORT int32_t ft_abi_version(void) { return 2; }

FT_EXPORT const char* ft_torch_version(void) { return TORCH_VERSION; }

FT_EXPORT int32_t ft_built_with_cuda(void) {
#ifdef FT_WITH_CUDA
  return 1;
#else
  return 0;
#endif
}
