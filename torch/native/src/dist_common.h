// Internal to the distributed translation units (store.cpp, process_group.cpp): the handle types behind ft_store and
// ft_process_group. Only the Store base class is named here, so this header costs no Gloo or NCCL includes.
#pragma once
#include <torch/csrc/distributed/c10d/Store.hpp>
#include "common.h"

namespace ft::dist {

// What an ft_store points at: the store and the port it really serves or reached (port 0 asks the kernel for one).
struct StoreHandle {
  c10::intrusive_ptr<c10d::Store> store;
  int32_t port = 0;
};

inline StoreHandle& S(ft_store h) {
  TORCH_CHECK(h != nullptr, "FineTune: a null store handle was passed to the native shim");
  return *reinterpret_cast<StoreHandle*>(h);
}

}  // namespace ft::dist
