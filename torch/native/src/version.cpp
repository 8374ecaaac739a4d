// Library identity: version of the shim and of the libtorch it was built against.
#include <torch/version.h>
#include "shim.h"

FT_EXPORT int ft_abi_version() { return 1; }

FT_EXPORT const char* ft_torch_version() { return TORCH_VERSION; }
