/* The FineTune libtorch shim: the complete C ABI that FineTune.Torch calls through P/Invoke.
 *
 * Conventions
 * - Every function that can fail returns int32_t: FT_OK (0) or FT_ERROR (1). On FT_ERROR the message is
 *   in ft_last_error() (thread-local, valid until this thread's next failing call). No C++ exception
 *   ever crosses this boundary.
 * - Results come back through out-parameters. A tensor result is a new handle the caller must release
 *   with ft_tensor_free; a null handle means "undefined tensor" (e.g. no gradient yet).
 * - dtype codes: 0 f32, 1 f64, 2 bf16, 3 f16, 4 i64, 5 i32, 6 u8, 7 bool (-1: other).
 * - device: (type, index) with type 0 = cpu, 1 = cuda.
 * - CUDA functions exist in every build; without FT_WITH_CUDA they fail with "built without CUDA".
 * - Distributed functions exist in every build; a backend compiled out (Gloo without its headers, NCCL without
 *   CUDA) fails with a sentence saying so. Every blocking distributed call is bounded by its timeout.
 */
#pragma once
#include <stdint.h>

#ifdef __cplusplus
#define FT_EXPORT extern "C" __attribute__((visibility("default")))
#else
#define FT_EXPORT __attribute__((visibility("default")))
#endif

#define FT_OK 0
#define FT_ERROR 1

typedef void* ft_tensor;
typedef void* ft_generator;
typedef void* ft_optimizer;
typedef void* ft_cuda_stream;
typedef void* ft_cuda_event;
typedef void* ft_store;
typedef void* ft_process_group;

/* version.cpp / error.cpp */
FT_EXPORT int32_t ft_abi_version(void);
FT_EXPORT const char* ft_torch_version(void);
FT_EXPORT int32_t ft_built_with_cuda(void);
FT_EXPORT const char* ft_last_error(void);
FT_EXPORT int64_t ft_live_tensor_count(void);
FT_EXPORT int32_t ft_test_throw(int32_t kind); /* 0 c10::Error, 1 std::exception, 2 other */

/* tensor.cpp: lifetime and metadata */
FT_EXPORT void ft_tensor_free(ft_tensor t);
FT_EXPORT int32_t ft_tensor_rank(ft_tensor t, int32_t* rank);
FT_EXPORT int32_t ft_tensor_shape(ft_tensor t, int64_t* shape, int32_t capacity);
FT_EXPORT int32_t ft_tensor_strides(ft_tensor t, int64_t* strides, int32_t capacity);
FT_EXPORT int32_t ft_tensor_numel(ft_tensor t, int64_t* numel);
FT_EXPORT int32_t ft_tensor_element_size(ft_tensor t, int64_t* byte_count);
FT_EXPORT int32_t ft_tensor_dtype(ft_tensor t, int32_t* dtype);
FT_EXPORT int32_t ft_tensor_device(ft_tensor t, int32_t* device_type, int32_t* device_index);
FT_EXPORT int32_t ft_tensor_data_ptr(ft_tensor t, void** data);
FT_EXPORT int32_t ft_tensor_is_contiguous(ft_tensor t, int32_t* contiguous);

/* tensor.cpp: creation */
FT_EXPORT int32_t ft_empty(const int64_t* shape, int32_t rank, int32_t dtype, int32_t device_type, int32_t device_index, ft_tensor* out);
FT_EXPORT int32_t ft_full(const int64_t* shape, int32_t rank, double value, int32_t dtype, int32_t device_type, int32_t device_index, ft_tensor* out);
FT_EXPORT int32_t ft_arange(double start, double end, double step, int32_t dtype, int32_t device_type, int32_t device_index, ft_tensor* out);
FT_EXPORT int32_t ft_randn(const int64_t* shape, int32_t rank, ft_generator gen, int32_t dtype, int32_t device_type, int32_t device_index, ft_tensor* out);
FT_EXPORT int32_t ft_rand(const int64_t* shape, int32_t rank, ft_generator gen, int32_t dtype, int32_t device_type, int32_t device_index, ft_tensor* out);
/* Zero-copy: the tensor views caller-owned CPU memory, which must outlive it. */
FT_EXPORT int32_t ft_from_blob(void* data, const int64_t* shape, int32_t rank, int32_t dtype, ft_tensor* out);
/* Copies contiguous host data into a new CPU tensor. */
FT_EXPORT int32_t ft_from_host(const void* data, int64_t byte_count, const int64_t* shape, int32_t rank, int32_t dtype, ft_tensor* out);
/* Copies the tensor's elements (any device/layout) into host memory of exactly byte_count bytes. */
FT_EXPORT int32_t ft_copy_to_host(ft_tensor t, void* data, int64_t byte_count);
/* Copies host memory of exactly byte_count bytes into the tensor's elements, in place. */
FT_EXPORT int32_t ft_copy_from_host(ft_tensor t, const void* data, int64_t byte_count);

/* tensor.cpp: conversion, in-place and transfer */
FT_EXPORT int32_t ft_to(ft_tensor t, int32_t device_type, int32_t device_index, int32_t dtype, int32_t non_blocking, ft_tensor* out);
FT_EXPORT int32_t ft_copy_(ft_tensor dst, ft_tensor src, int32_t non_blocking);
FT_EXPORT int32_t ft_add_(ft_tensor t, ft_tensor other, double alpha);
FT_EXPORT int32_t ft_mul_scalar_(ft_tensor t, double value);
FT_EXPORT int32_t ft_fill_(ft_tensor t, double value);

/* ops_math.cpp: elementwise and reductions */
#define FT_UNARY_NEG 0
#define FT_UNARY_RSQRT 1
#define FT_UNARY_SQRT 2
#define FT_UNARY_EXP 3
#define FT_UNARY_LOG 4
#define FT_UNARY_SILU 5
#define FT_UNARY_CONTIGUOUS 6
#define FT_UNARY_CLONE 7
#define FT_UNARY_DETACH 8
#define FT_UNARY_ABS 9
#define FT_UNARY_SIGMOID 10
#define FT_UNARY_TANH 11
#define FT_UNARY_COS 12
#define FT_UNARY_SIN 13
#define FT_BINARY_ADD 0
#define FT_BINARY_SUB 1
#define FT_BINARY_MUL 2
#define FT_BINARY_DIV 3
#define FT_BINARY_POW 4  /* scalar form only */
#define FT_BINARY_RSUB 5 /* scalar form only: value - t */
#define FT_BINARY_RDIV 6 /* scalar form only: value / t */
FT_EXPORT int32_t ft_unary(int32_t op, ft_tensor t, ft_tensor* out);
FT_EXPORT int32_t ft_binary(int32_t op, ft_tensor a, ft_tensor b, ft_tensor* out);
FT_EXPORT int32_t ft_binary_scalar(int32_t op, ft_tensor a, double value, ft_tensor* out);
FT_EXPORT int32_t ft_mean(ft_tensor t, const int64_t* dims, int32_t dim_count, int32_t keep_dim, ft_tensor* out); /* dim_count < 0: all */
FT_EXPORT int32_t ft_sum(ft_tensor t, const int64_t* dims, int32_t dim_count, int32_t keep_dim, ft_tensor* out);  /* dim_count < 0: all */
FT_EXPORT int32_t ft_max_all(ft_tensor t, ft_tensor* out);
FT_EXPORT int32_t ft_argmax(ft_tensor t, int64_t dim, int32_t keep_dim, ft_tensor* out);
FT_EXPORT int32_t ft_softmax(ft_tensor t, int64_t dim, ft_tensor* out);
FT_EXPORT int32_t ft_log_softmax(ft_tensor t, int64_t dim, ft_tensor* out);
FT_EXPORT int32_t ft_masked_fill(ft_tensor t, ft_tensor mask, double value, ft_tensor* out);
FT_EXPORT int32_t ft_where(ft_tensor cond, ft_tensor a, ft_tensor b, ft_tensor* out);
FT_EXPORT int32_t ft_triu(ft_tensor t, int64_t k, ft_tensor* out);
FT_EXPORT int32_t ft_tril(ft_tensor t, int64_t k, ft_tensor* out);
FT_EXPORT int32_t ft_equal(ft_tensor a, ft_tensor b, int32_t* equal);

/* ops_inplace.cpp: in-place updates (optimizer arithmetic) and checks; unary codes as above, binary 0-3 */
FT_EXPORT int32_t ft_unary_(int32_t op, ft_tensor t);
FT_EXPORT int32_t ft_binary_(int32_t op, ft_tensor t, ft_tensor other);
FT_EXPORT int32_t ft_addcmul_(ft_tensor t, ft_tensor a, ft_tensor b, double value);  /* t += value * a * b */
FT_EXPORT int32_t ft_addcdiv_(ft_tensor t, ft_tensor a, ft_tensor b, double value);  /* t += value * a / b */
FT_EXPORT int32_t ft_lerp_(ft_tensor t, ft_tensor end, double weight);               /* t += weight * (end - t) */
FT_EXPORT int32_t ft_clamp(ft_tensor t, int32_t has_min, double min, int32_t has_max, double max, ft_tensor* out);
FT_EXPORT int32_t ft_clamp_(ft_tensor t, int32_t has_min, double min, int32_t has_max, double max);
FT_EXPORT int32_t ft_norm(ft_tensor t, double p, ft_tensor* out);
FT_EXPORT int32_t ft_all_finite(ft_tensor t, int32_t* all_finite);
FT_EXPORT int32_t ft_stack(const ft_tensor* tensors, int32_t count, int64_t dim, ft_tensor* out);

/* ops_shape.cpp: views and layout */
FT_EXPORT int32_t ft_view(ft_tensor t, const int64_t* shape, int32_t rank, ft_tensor* out);
FT_EXPORT int32_t ft_reshape(ft_tensor t, const int64_t* shape, int32_t rank, ft_tensor* out);
FT_EXPORT int32_t ft_expand(ft_tensor t, const int64_t* shape, int32_t rank, ft_tensor* out);
FT_EXPORT int32_t ft_permute(ft_tensor t, const int64_t* order, int32_t rank, ft_tensor* out);
FT_EXPORT int32_t ft_transpose(ft_tensor t, int64_t dim0, int64_t dim1, ft_tensor* out);
FT_EXPORT int32_t ft_narrow(ft_tensor t, int64_t dim, int64_t start, int64_t length, ft_tensor* out);
FT_EXPORT int32_t ft_repeat_interleave(ft_tensor t, int64_t repeats, int64_t dim, ft_tensor* out);
FT_EXPORT int32_t ft_unsqueeze(ft_tensor t, int64_t dim, ft_tensor* out);
FT_EXPORT int32_t ft_squeeze(ft_tensor t, int64_t dim, ft_tensor* out);
FT_EXPORT int32_t ft_cat(const ft_tensor* tensors, int32_t count, int64_t dim, ft_tensor* out);

/* ops_nn.cpp: layers a Llama-family forward/backward needs */
FT_EXPORT int32_t ft_linear(ft_tensor x, ft_tensor w, ft_tensor b /* nullable */, ft_tensor* out);
FT_EXPORT int32_t ft_matmul(ft_tensor a, ft_tensor b, ft_tensor* out);
FT_EXPORT int32_t ft_bmm(ft_tensor a, ft_tensor b, ft_tensor* out);
FT_EXPORT int32_t ft_embedding(ft_tensor weight, ft_tensor ids, ft_tensor* out);
/* reduction: 0 none, 1 mean, 2 sum (at::Reduction codes) */
FT_EXPORT int32_t ft_cross_entropy(ft_tensor logits, ft_tensor targets, int64_t ignore_index, int32_t reduction, ft_tensor* out);
FT_EXPORT int32_t ft_scaled_dot_product_attention(ft_tensor q, ft_tensor k, ft_tensor v, int32_t is_causal, ft_tensor* out);
FT_EXPORT int32_t ft_sdpa_is_fused(int32_t* fused); /* 1 when at::scaled_dot_product_attention is used (torch >= 2.0) */

/* autograd.cpp */
FT_EXPORT int32_t ft_requires_grad(ft_tensor t, int32_t* requires_grad);
FT_EXPORT int32_t ft_set_requires_grad(ft_tensor t, int32_t requires_grad);
FT_EXPORT int32_t ft_grad(ft_tensor t, ft_tensor* out); /* null handle when no gradient */
FT_EXPORT int32_t ft_zero_grad(ft_tensor t);
FT_EXPORT int32_t ft_set_grad(ft_tensor t, ft_tensor grad /* nullable: clears */);
FT_EXPORT int32_t ft_is_leaf(ft_tensor t, int32_t* is_leaf);
FT_EXPORT int32_t ft_backward(const ft_tensor* outputs, const ft_tensor* grad_outputs /* entries nullable */, int32_t count, int32_t retain_graph);
FT_EXPORT int32_t ft_autograd_grad(const ft_tensor* outputs, const ft_tensor* grad_outputs, int32_t output_count,
                                   const ft_tensor* inputs, int32_t input_count, int32_t retain_graph, int32_t allow_unused,
                                   ft_tensor* input_grads /* input_count entries, null when unused */);
FT_EXPORT int32_t ft_grad_enabled(int32_t* enabled);
FT_EXPORT int32_t ft_set_grad_enabled(int32_t enabled);

/* runtime.cpp: generators, seeds, threads, libtorch's AdamW (the only TU with torch/torch.h) */
FT_EXPORT int32_t ft_generator_new(uint64_t seed, ft_generator* out);
FT_EXPORT void ft_generator_free(ft_generator gen);
FT_EXPORT int32_t ft_manual_seed(uint64_t seed);
FT_EXPORT int32_t ft_set_num_threads(int32_t count);
FT_EXPORT int32_t ft_get_num_threads(int32_t* count);
FT_EXPORT int32_t ft_adamw_new(const ft_tensor* params, int32_t count, double lr, double beta1, double beta2, double eps,
                               double weight_decay, ft_optimizer* out);
FT_EXPORT void ft_adamw_free(ft_optimizer opt);
FT_EXPORT int32_t ft_adamw_step(ft_optimizer opt);
FT_EXPORT int32_t ft_adamw_zero_grad(ft_optimizer opt);
FT_EXPORT int32_t ft_adamw_set_lr(ft_optimizer opt, double lr);
FT_EXPORT int32_t ft_adamw_get_lr(ft_optimizer opt, double* lr);

/* cuda.cpp: compiled with FT_WITH_CUDA only when libtorch has CUDA */
FT_EXPORT int32_t ft_cuda_is_available(int32_t* available);
FT_EXPORT int32_t ft_cuda_device_count(int32_t* count);
FT_EXPORT int32_t ft_cuda_synchronize(int32_t device_index);
FT_EXPORT int32_t ft_cuda_stream_new(int32_t device_index, int32_t high_priority, ft_cuda_stream* out);
FT_EXPORT int32_t ft_cuda_stream_current(int32_t device_index, ft_cuda_stream* out);
FT_EXPORT void ft_cuda_stream_free(ft_cuda_stream stream);
FT_EXPORT int32_t ft_cuda_stream_set_current(ft_cuda_stream stream);
FT_EXPORT int32_t ft_cuda_stream_synchronize(ft_cuda_stream stream);
FT_EXPORT int32_t ft_cuda_stream_query(ft_cuda_stream stream, int32_t* done);
FT_EXPORT int32_t ft_cuda_event_new(int32_t enable_timing, ft_cuda_event* out);
FT_EXPORT void ft_cuda_event_free(ft_cuda_event ev);
FT_EXPORT int32_t ft_cuda_event_record(ft_cuda_event ev, ft_cuda_stream stream);
FT_EXPORT int32_t ft_cuda_event_wait(ft_cuda_event ev, ft_cuda_stream stream); /* stream waits for the event */
FT_EXPORT int32_t ft_cuda_event_synchronize(ft_cuda_event ev);
FT_EXPORT int32_t ft_cuda_event_query(ft_cuda_event ev, int32_t* done);
FT_EXPORT int32_t ft_cuda_event_elapsed_ms(ft_cuda_event start, ft_cuda_event end, float* ms);
FT_EXPORT int32_t ft_cuda_host_register(void* data, int64_t byte_count);
FT_EXPORT int32_t ft_cuda_host_unregister(void* data);
/* stats: [0] allocated current, [1] allocated peak, [2] reserved current, [3] reserved peak, [4] free, [5] total (bytes) */
FT_EXPORT int32_t ft_cuda_memory_stats(int32_t device_index, int64_t* stats6);

/* store.cpp: c10d::TCPStore, the rendezvous key-value store (rank 0 serves it). timeout_ms bounds connect,
 * get and wait. port 0 with is_server: the kernel picks a free port, ft_store_port tells which. */
FT_EXPORT int32_t ft_store_tcp_new(const char* host, int32_t port, int32_t is_server, int32_t world_size, int64_t timeout_ms, ft_store* out);
FT_EXPORT void ft_store_free(ft_store store);
FT_EXPORT int32_t ft_store_port(ft_store store, int32_t* port);
FT_EXPORT int32_t ft_store_set(ft_store store, const char* key, const uint8_t* value, int64_t byte_count);
/* Blocks until the key exists (or the timeout); *byte_count gets the value's length, at most capacity bytes are copied. */
FT_EXPORT int32_t ft_store_get(ft_store store, const char* key, uint8_t* buffer, int64_t capacity, int64_t* byte_count);
FT_EXPORT int32_t ft_store_add(ft_store store, const char* key, int64_t delta, int64_t* value);
FT_EXPORT int32_t ft_store_check(ft_store store, const char* key, int32_t* exists);

/* process_group.cpp: c10d process groups and the collectives ZeRO needs, each waited for with the group's timeout.
 * backend codes: 0 gloo (CPU tensors), 1 nccl (CUDA tensors; CUDA builds only).
 * reduce op codes: 0 sum, 1 product, 2 min, 3 max.
 * Errors read "rank R of W (backend): OPERATION failed: cause". After a failed or timed-out collective the group is
 * broken (its peers may be mid-operation) and every later call fails at once; the caller ends the run. */
FT_EXPORT int32_t ft_dist_backend_available(int32_t backend, int32_t* available);
/* key_prefix separates the keys of several groups over one store; threads: Gloo worker threads (0: libtorch's default). */
FT_EXPORT int32_t ft_pg_new(int32_t backend, ft_store store, const char* key_prefix, int32_t rank, int32_t world_size,
                            const char* hostname, int64_t timeout_ms, int32_t threads, ft_process_group* out);
FT_EXPORT void ft_pg_free(ft_process_group group);
FT_EXPORT int32_t ft_pg_all_reduce(ft_process_group group, ft_tensor t, int32_t op);
FT_EXPORT int32_t ft_pg_reduce(ft_process_group group, ft_tensor t, int32_t root, int32_t op);
FT_EXPORT int32_t ft_pg_broadcast(ft_process_group group, ft_tensor t, int32_t root);
/* output: (W * n) contiguous, rank r's input (n) lands at [r * n, (r + 1) * n). */
FT_EXPORT int32_t ft_pg_all_gather(ft_process_group group, ft_tensor input, ft_tensor output);
/* input: (W * n) contiguous, output (n) gets the reduction of every rank's [r * n, (r + 1) * n). Backends without a
 * native reduce-scatter (Gloo in libtorch 1.13) fail; *supported says which (FineTune.Torch falls back then). */
FT_EXPORT int32_t ft_pg_reduce_scatter(ft_process_group group, ft_tensor input, ft_tensor output, int32_t op);
FT_EXPORT int32_t ft_pg_supports_reduce_scatter(ft_process_group group, int32_t* supported);
/* input and output: (W * n) contiguous, same dtype; rank r's input [s * n, (s + 1) * n) lands in rank s's output at
 * [r * n, (r + 1) * n). The building block of a reduce-scatter that moves only (W-1)/W of the buffer per rank. */
FT_EXPORT int32_t ft_pg_all_to_all(ft_process_group group, ft_tensor input, ft_tensor output);
FT_EXPORT int32_t ft_pg_barrier(ft_process_group group);
/* 1 once a collective of this group failed or timed out (argument errors do not break a group). */
FT_EXPORT int32_t ft_pg_is_broken(ft_process_group group, int32_t* broken);

/* capture.cpp: allocation capture, the mechanism behind spilling a kept graph's saved tensors to NVMe.
 * While a thread captures, each CPU tensor allocation of at least ft_capture_min_bytes it makes gets a mapping of its
 * own: page-aligned, its length rounded up to 4096 (2 MiB-aligned and madvised for huge pages from 2 MiB), so a
 * region can go to an O_DIRECT file as it is and its pages can be handed back (discard) while the tensor lives;
 * reading the bytes back into the same addresses restores it. Other threads, smaller allocations and allocations
 * while suspended go to libtorch's CPU allocator as before. The allocator is installed on the first begin. */
FT_EXPORT int64_t ft_capture_min_bytes(void);
/* Starts capturing this thread's allocations (fails when it already captures). */
FT_EXPORT int32_t ft_capture_begin(void);
/* Suspends (active 0) or resumes (active 1) this thread's capture; *was_active gets the state before. */
FT_EXPORT int32_t ft_capture_set_active(int32_t active, int32_t* was_active);
/* Ends this thread's capture; *count gets the regions captured since begin that are still alive. */
FT_EXPORT int32_t ft_capture_end(int64_t* count);
/* Copies the regions of the last end (at most capacity) and forgets them. */
FT_EXPORT int32_t ft_capture_result(void** pointers, int64_t* byte_counts, int64_t capacity);
/* Takes a live region's pages away (into the page pool while it has room, else back to the kernel): it reads as zeros
 * until its bytes are read back. */
FT_EXPORT int32_t ft_capture_discard(void* pointer, int64_t byte_count);
/* Before a discarded region is read back: moves pooled pages of its size under it (*supplied 1), so the read lands in
 * resident pages; *supplied 0 when the pool has none (the read faults fresh pages in). */
FT_EXPORT int32_t ft_capture_supply_pages(void* pointer, int64_t byte_count, int32_t* supplied);
/* Adds delta (may be negative) to the page pool's limit in bytes (0 at start: no pool) and trims the pool to it;
 * *limit and *pooled_bytes get the limit and the pooled bytes after. */
FT_EXPORT int32_t ft_capture_pool_limit(int64_t delta, int64_t* limit, int64_t* pooled_bytes);
