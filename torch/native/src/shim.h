// Shared declarations of the FineTune libtorch shim (C ABI).
#pragma once
#define FT_EXPORT extern "C" __attribute__((visibility("default")))
