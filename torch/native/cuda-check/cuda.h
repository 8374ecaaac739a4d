// See cuda_runtime_api.h beside this file: declarations for the compile-only CUDA check.
#pragma once
#include "cuda_runtime_api.h"
