using System.Runtime.InteropServices;

namespace FineTune.Torch.Native;

/// <summary>
/// P/Invoke declarations of the shim's C ABI, one per function of torch/native/src/shim.h (same names, same order).
/// Handles travel as IntPtr; callers keep the owning SafeHandle alive across the call (see <see cref="Tensor"/>).
/// Every int-returning function returns 0 on success and 1 on failure; wrap calls in <see cref="Check"/>.
/// </summary>
internal static unsafe class NativeMethods
{
    private const string Lib = NativeLibraryLoader.LibraryName;

    static NativeMethods()
    {
        NativeLibraryLoader.EnsureRegistered();
    }

    /// <summary>Throws <see cref="TorchException"/> with the native last error when <paramref name="status"/> is not 0.</summary>
    public static void Check(int status)
    {
        if (status != 0)
        {
            throw new TorchException(LastErrorMessage());
        }
    }

    public static string LastErrorMessage()
    {
        var message = Marshal.PtrToStringUTF8(ft_last_error()) ?? "unknown libtorch error";
        return message.Trim();
    }

    [DllImport(Lib)] public static extern int ft_abi_version();
    [DllImport(Lib)] public static extern IntPtr ft_torch_version();
    [DllImport(Lib)] public static extern int ft_built_with_cuda();
    [DllImport(Lib)] public static extern IntPtr ft_last_error();
    [DllImport(Lib)] public static extern long ft_live_tensor_count();
    [DllImport(Lib)] public static extern int ft_test_throw(int kind);
    [DllImport(Lib)] public static extern void ft_tensor_free(IntPtr t);
    [DllImport(Lib)] public static extern int ft_tensor_rank(IntPtr t, int* rank);
    [DllImport(Lib)] public static extern int ft_tensor_shape(IntPtr t, long* shape, int capacity);
    [DllImport(Lib)] public static extern int ft_tensor_strides(IntPtr t, long* strides, int capacity);
    [DllImport(Lib)] public static extern int ft_tensor_numel(IntPtr t, long* numel);
    [DllImport(Lib)] public static extern int ft_tensor_element_size(IntPtr t, long* byte_count);
    [DllImport(Lib)] public static extern int ft_tensor_dtype(IntPtr t, int* dtype);
    [DllImport(Lib)] public static extern int ft_tensor_device(IntPtr t, int* device_type, int* device_index);
    [DllImport(Lib)] public static extern int ft_tensor_data_ptr(IntPtr t, IntPtr* data);
    [DllImport(Lib)] public static extern int ft_tensor_is_contiguous(IntPtr t, int* contiguous);
    [DllImport(Lib)] public static extern int ft_empty(long* shape, int rank, int dtype, int device_type, int device_index, IntPtr* @out);
    [DllImport(Lib)] public static extern int ft_full(long* shape, int rank, double value, int dtype, int device_type, int device_index, IntPtr* @out);
    [DllImport(Lib)] public static extern int ft_arange(double start, double end, double step, int dtype, int device_type, int device_index, IntPtr* @out);
    [DllImport(Lib)] public static extern int ft_randn(long* shape, int rank, IntPtr gen, int dtype, int device_type, int device_index, IntPtr* @out);
    [DllImport(Lib)] public static extern int ft_rand(long* shape, int rank, IntPtr gen, int dtype, int device_type, int device_index, IntPtr* @out);
    [DllImport(Lib)] public static extern int ft_from_blob(IntPtr data, long* shape, int rank, int dtype, IntPtr* @out);
    [DllImport(Lib)] public static extern int ft_from_host(IntPtr data, long byte_count, long* shape, int rank, int dtype, IntPtr* @out);
    [DllImport(Lib)] public static extern int ft_copy_to_host(IntPtr t, IntPtr data, long byte_count);
    [DllImport(Lib)] public static extern int ft_copy_from_host(IntPtr t, IntPtr data, long byte_count);
    [DllImport(Lib)] public static extern int ft_to(IntPtr t, int device_type, int device_index, int dtype, int non_blocking, IntPtr* @out);
    [DllImport(Lib)] public static extern int ft_copy_(IntPtr dst, IntPtr src, int non_blocking);
    [DllImport(Lib)] public static extern int ft_add_(IntPtr t, IntPtr other, double alpha);
    [DllImport(Lib)] public static extern int ft_mul_scalar_(IntPtr t, double value);
    [DllImport(Lib)] public static extern int ft_fill_(IntPtr t, double value);
    [DllImport(Lib)] public static extern int ft_unary(int op, IntPtr t, IntPtr* @out);
    [DllImport(Lib)] public static extern int ft_binary(int op, IntPtr a, IntPtr b, IntPtr* @out);
    [DllImport(Lib)] public static extern int ft_binary_scalar(int op, IntPtr a, double value, IntPtr* @out);
    [DllImport(Lib)] public static extern int ft_mean(IntPtr t, long* dims, int dim_count, int keep_dim, IntPtr* @out);
    [DllImport(Lib)] public static extern int ft_sum(IntPtr t, long* dims, int dim_count, int keep_dim, IntPtr* @out);
    [DllImport(Lib)] public static extern int ft_max_all(IntPtr t, IntPtr* @out);
    [DllImport(Lib)] public static extern int ft_argmax(IntPtr t, long dim, int keep_dim, IntPtr* @out);
    [DllImport(Lib)] public static extern int ft_softmax(IntPtr t, long dim, IntPtr* @out);
    [DllImport(Lib)] public static extern int ft_log_softmax(IntPtr t, long dim, IntPtr* @out);
    [DllImport(Lib)] public static extern int ft_masked_fill(IntPtr t, IntPtr mask, double value, IntPtr* @out);
    [DllImport(Lib)] public static extern int ft_where(IntPtr cond, IntPtr a, IntPtr b, IntPtr* @out);
    [DllImport(Lib)] public static extern int ft_triu(IntPtr t, long k, IntPtr* @out);
    [DllImport(Lib)] public static extern int ft_tril(IntPtr t, long k, IntPtr* @out);
    [DllImport(Lib)] public static extern int ft_equal(IntPtr a, IntPtr b, int* equal);
    [DllImport(Lib)] public static extern int ft_unary_(int op, IntPtr t);
    [DllImport(Lib)] public static extern int ft_binary_(int op, IntPtr t, IntPtr other);
    [DllImport(Lib)] public static extern int ft_addcmul_(IntPtr t, IntPtr a, IntPtr b, double value);
    [DllImport(Lib)] public static extern int ft_addcdiv_(IntPtr t, IntPtr a, IntPtr b, double value);
    [DllImport(Lib)] public static extern int ft_lerp_(IntPtr t, IntPtr end, double weight);
    [DllImport(Lib)] public static extern int ft_clamp(IntPtr t, int has_min, double min, int has_max, double max, IntPtr* @out);
    [DllImport(Lib)] public static extern int ft_clamp_(IntPtr t, int has_min, double min, int has_max, double max);
    [DllImport(Lib)] public static extern int ft_norm(IntPtr t, double p, IntPtr* @out);
    [DllImport(Lib)] public static extern int ft_all_finite(IntPtr t, int* all_finite);
    [DllImport(Lib)] public static extern int ft_stack(IntPtr* tensors, int count, long dim, IntPtr* @out);
    [DllImport(Lib)] public static extern int ft_view(IntPtr t, long* shape, int rank, IntPtr* @out);
    [DllImport(Lib)] public static extern int ft_reshape(IntPtr t, long* shape, int rank, IntPtr* @out);
    [DllImport(Lib)] public static extern int ft_expand(IntPtr t, long* shape, int rank, IntPtr* @out);
    [DllImport(Lib)] public static extern int ft_permute(IntPtr t, long* order, int rank, IntPtr* @out);
    [DllImport(Lib)] public static extern int ft_transpose(IntPtr t, long dim0, long dim1, IntPtr* @out);
    [DllImport(Lib)] public static extern int ft_narrow(IntPtr t, long dim, long start, long length, IntPtr* @out);
    [DllImport(Lib)] public static extern int ft_repeat_interleave(IntPtr t, long repeats, long dim, IntPtr* @out);
    [DllImport(Lib)] public static extern int ft_unsqueeze(IntPtr t, long dim, IntPtr* @out);
    [DllImport(Lib)] public static extern int ft_squeeze(IntPtr t, long dim, IntPtr* @out);
    [DllImport(Lib)] public static extern int ft_cat(IntPtr* tensors, int count, long dim, IntPtr* @out);
    [DllImport(Lib)] public static extern int ft_linear(IntPtr x, IntPtr w, IntPtr b, IntPtr* @out);
    [DllImport(Lib)] public static extern int ft_matmul(IntPtr a, IntPtr b, IntPtr* @out);
    [DllImport(Lib)] public static extern int ft_bmm(IntPtr a, IntPtr b, IntPtr* @out);
    [DllImport(Lib)] public static extern int ft_embedding(IntPtr weight, IntPtr ids, IntPtr* @out);
    [DllImport(Lib)] public static extern int ft_cross_entropy(IntPtr logits, IntPtr targets, long ignore_index, int reduction, IntPtr* @out);
    [DllImport(Lib)] public static extern int ft_scaled_dot_product_attention(IntPtr q, IntPtr k, IntPtr v, int is_causal, IntPtr* @out);
    [DllImport(Lib)] public static extern int ft_sdpa_is_fused(int* fused);
    [DllImport(Lib)] public static extern int ft_requires_grad(IntPtr t, int* requires_grad);
    [DllImport(Lib)] public static extern int ft_set_requires_grad(IntPtr t, int requires_grad);
    [DllImport(Lib)] public static extern int ft_grad(IntPtr t, IntPtr* @out);
    [DllImport(Lib)] public static extern int ft_zero_grad(IntPtr t);
    [DllImport(Lib)] public static extern int ft_set_grad(IntPtr t, IntPtr grad);
    [DllImport(Lib)] public static extern int ft_is_leaf(IntPtr t, int* is_leaf);
    [DllImport(Lib)] public static extern int ft_backward(IntPtr* outputs, IntPtr* grad_outputs, int count, int retain_graph);
    [DllImport(Lib)] public static extern int ft_autograd_grad(IntPtr* outputs, IntPtr* grad_outputs, int output_count, IntPtr* inputs, int input_count, int retain_graph, int allow_unused, IntPtr* input_grads);
    [DllImport(Lib)] public static extern int ft_grad_enabled(int* enabled);
    [DllImport(Lib)] public static extern int ft_set_grad_enabled(int enabled);
    [DllImport(Lib)] public static extern int ft_generator_new(ulong seed, IntPtr* @out);
    [DllImport(Lib)] public static extern void ft_generator_free(IntPtr gen);
    [DllImport(Lib)] public static extern int ft_manual_seed(ulong seed);
    [DllImport(Lib)] public static extern int ft_set_num_threads(int count);
    [DllImport(Lib)] public static extern int ft_get_num_threads(int* count);
    [DllImport(Lib)] public static extern int ft_adamw_new(IntPtr* @params, int count, double lr, double beta1, double beta2, double eps, double weight_decay, IntPtr* @out);
    [DllImport(Lib)] public static extern void ft_adamw_free(IntPtr opt);
    [DllImport(Lib)] public static extern int ft_adamw_step(IntPtr opt);
    [DllImport(Lib)] public static extern int ft_adamw_zero_grad(IntPtr opt);
    [DllImport(Lib)] public static extern int ft_adamw_set_lr(IntPtr opt, double lr);
    [DllImport(Lib)] public static extern int ft_adamw_get_lr(IntPtr opt, double* lr);
    [DllImport(Lib)] public static extern int ft_cuda_is_available(int* available);
    [DllImport(Lib)] public static extern int ft_cuda_device_count(int* count);
    [DllImport(Lib)] public static extern int ft_cuda_synchronize(int device_index);
    [DllImport(Lib)] public static extern int ft_cuda_stream_new(int device_index, int high_priority, IntPtr* @out);
    [DllImport(Lib)] public static extern int ft_cuda_stream_current(int device_index, IntPtr* @out);
    [DllImport(Lib)] public static extern void ft_cuda_stream_free(IntPtr stream);
    [DllImport(Lib)] public static extern int ft_cuda_stream_set_current(IntPtr stream);
    [DllImport(Lib)] public static extern int ft_cuda_stream_synchronize(IntPtr stream);
    [DllImport(Lib)] public static extern int ft_cuda_stream_query(IntPtr stream, int* done);
    [DllImport(Lib)] public static extern int ft_cuda_event_new(int enable_timing, IntPtr* @out);
    [DllImport(Lib)] public static extern void ft_cuda_event_free(IntPtr ev);
    [DllImport(Lib)] public static extern int ft_cuda_event_record(IntPtr ev, IntPtr stream);
    [DllImport(Lib)] public static extern int ft_cuda_event_wait(IntPtr ev, IntPtr stream);
    [DllImport(Lib)] public static extern int ft_cuda_event_synchronize(IntPtr ev);
    [DllImport(Lib)] public static extern int ft_cuda_event_query(IntPtr ev, int* done);
    [DllImport(Lib)] public static extern int ft_cuda_event_elapsed_ms(IntPtr start, IntPtr end, float* ms);
    [DllImport(Lib)] public static extern int ft_cuda_host_register(IntPtr data, long byte_count);
    [DllImport(Lib)] public static extern int ft_cuda_host_unregister(IntPtr data);
    [DllImport(Lib)] public static extern int ft_cuda_memory_stats(int device_index, long* stats6);
    [DllImport(Lib)] public static extern int ft_store_tcp_new([MarshalAs(UnmanagedType.LPUTF8Str)] string host, int port, int is_server, int world_size, long timeout_ms, IntPtr* @out);
    [DllImport(Lib)] public static extern void ft_store_free(IntPtr store);
    [DllImport(Lib)] public static extern int ft_store_port(IntPtr store, int* port);
    [DllImport(Lib)] public static extern int ft_store_set(IntPtr store, [MarshalAs(UnmanagedType.LPUTF8Str)] string key, byte* value, long byte_count);
    [DllImport(Lib)] public static extern int ft_store_get(IntPtr store, [MarshalAs(UnmanagedType.LPUTF8Str)] string key, byte* buffer, long capacity, long* byte_count);
    [DllImport(Lib)] public static extern int ft_store_add(IntPtr store, [MarshalAs(UnmanagedType.LPUTF8Str)] string key, long delta, long* value);
    [DllImport(Lib)] public static extern int ft_store_check(IntPtr store, [MarshalAs(UnmanagedType.LPUTF8Str)] string key, int* exists);
    [DllImport(Lib)] public static extern int ft_dist_backend_available(int backend, int* available);
    [DllImport(Lib)] public static extern int ft_pg_new(int backend, IntPtr store, [MarshalAs(UnmanagedType.LPUTF8Str)] string key_prefix, int rank, int world_size, [MarshalAs(UnmanagedType.LPUTF8Str)] string hostname, long timeout_ms, int threads, IntPtr* @out);
    [DllImport(Lib)] public static extern void ft_pg_free(IntPtr group);
    [DllImport(Lib)] public static extern int ft_pg_all_reduce(IntPtr group, IntPtr t, int op);
    [DllImport(Lib)] public static extern int ft_pg_reduce(IntPtr group, IntPtr t, int root, int op);
    [DllImport(Lib)] public static extern int ft_pg_broadcast(IntPtr group, IntPtr t, int root);
    [DllImport(Lib)] public static extern int ft_pg_all_gather(IntPtr group, IntPtr input, IntPtr output);
    [DllImport(Lib)] public static extern int ft_pg_reduce_scatter(IntPtr group, IntPtr input, IntPtr output, int op);
    [DllImport(Lib)] public static extern int ft_pg_supports_reduce_scatter(IntPtr group, int* supported);
    [DllImport(Lib)] public static extern int ft_pg_all_to_all(IntPtr group, IntPtr input, IntPtr output);
    [DllImport(Lib)] public static extern int ft_pg_barrier(IntPtr group);
    [DllImport(Lib)] public static extern int ft_pg_is_broken(IntPtr group, int* broken);
    [DllImport(Lib)] public static extern long ft_capture_min_bytes();
    [DllImport(Lib)] public static extern int ft_capture_begin();
    [DllImport(Lib)] public static extern int ft_capture_set_active(int active, int* was_active);
    [DllImport(Lib)] public static extern int ft_capture_end(long* count);
    [DllImport(Lib)] public static extern int ft_capture_result(IntPtr* pointers, long* byte_counts, long capacity);
    [DllImport(Lib)] public static extern int ft_capture_discard(IntPtr pointer, long byte_count);
    [DllImport(Lib)] public static extern int ft_capture_supply_pages(IntPtr pointer, long byte_count, int* supplied);
    [DllImport(Lib)] public static extern int ft_capture_pool_limit(long delta, long* limit, long* pooled_bytes);
}
