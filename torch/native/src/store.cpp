// c10d::TCPStore, the key-value store ranks rendezvous through (torch.distributed's env:// init uses the same
// one): rank 0 serves it on MASTER_ADDR:MASTER_PORT inside its own process, every rank (rank 0 included) is a
// client. Process groups read their peers' addresses from it; FineTune also keeps join marks and heartbeats in it,
// which is how a failed collective names the rank that stopped answering (FineTune.Torch.Distributed).
// Every blocking call (connect, get, wait) gives up after the store's timeout with libtorch's own message.
#include <chrono>
#include <cstring>
#include <string>
#include <vector>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include "dist_common.h"

using ft::dist::S;

FT_EXPORT int32_t ft_store_tcp_new(const char* host, int32_t port, int32_t is_server, int32_t world_size, int64_t timeout_ms,
                                   ft_store* out) {
  FT_TRY
  TORCH_CHECK(host != nullptr && host[0] != '\0', "FineTune: the store needs a host name or address");
  TORCH_CHECK(port >= 0 && port <= 65535, "FineTune: the store port must be 0-65535, got ", port);
  TORCH_CHECK(world_size >= 1, "FineTune: the world size must be at least 1, got ", world_size);
  TORCH_CHECK(timeout_ms > 0, "FineTune: the store timeout must be positive, got ", timeout_ms, " ms");
  c10d::TCPStoreOptions options;
  options.port = static_cast<std::uint16_t>(port);
  options.isServer = is_server != 0;
  options.numWorkers = static_cast<std::size_t>(world_size);
  // FineTune checks that every rank joined itself (and names the missing ones), so the server does not block here.
  options.waitWorkers = false;
  options.timeout = std::chrono::milliseconds(timeout_ms);
  auto* handle = new ft::dist::StoreHandle();
  try {
    auto store = c10::make_intrusive<c10d::TCPStore>(std::string(host), options);
    handle->port = store->getPort();
    handle->store = store;
  } catch (...) {
    delete handle;
    throw;
  }
  *out = reinterpret_cast<ft_store>(handle);
  FT_CATCH
}

FT_EXPORT void ft_store_free(ft_store store) { delete reinterpret_cast<ft::dist::StoreHandle*>(store); }

FT_EXPORT int32_t ft_store_port(ft_store store, int32_t* port) { FT_TRY *port = S(store).port; FT_CATCH }

FT_EXPORT int32_t ft_store_set(ft_store store, const char* key, const uint8_t* value, int64_t byte_count) {
  FT_TRY
  TORCH_CHECK(key != nullptr && byte_count >= 0, "FineTune: store set needs a key and a non-negative length");
  S(store).store->set(key, std::vector<uint8_t>(value, value + byte_count));
  FT_CATCH
}

FT_EXPORT int32_t ft_store_get(ft_store store, const char* key, uint8_t* buffer, int64_t capacity, int64_t* byte_count) {
  FT_TRY
  TORCH_CHECK(key != nullptr && capacity >= 0, "FineTune: store get needs a key and a non-negative capacity");
  std::vector<uint8_t> value = S(store).store->get(key);
  *byte_count = static_cast<int64_t>(value.size());
  if (!value.empty() && capacity > 0)
    std::memcpy(buffer, value.data(), std::min<size_t>(value.size(), static_cast<size_t>(capacity)));
  FT_CATCH
}

FT_EXPORT int32_t ft_store_add(ft_store store, const char* key, int64_t delta, int64_t* value) {
  FT_TRY
  TORCH_CHECK(key != nullptr, "FineTune: store add needs a key");
  *value = S(store).store->add(key, delta);
  FT_CATCH
}

FT_EXPORT int32_t ft_store_check(ft_store store, const char* key, int32_t* exists) {
  FT_TRY
  TORCH_CHECK(key != nullptr, "FineTune: store check needs a key");
  *exists = S(store).store->check({std::string(key)}) ? 1 : 0;
  FT_CATCH
}
