// Views and layout changes: view, reshape, expand, permute, transpose, narrow, repeat_interleave, cat.
#include <vector>
#include "common.h"

using ft::T;
using ft::new_handle;

FT_EXPORT int32_t ft_view(ft_tensor t, const int64_t* shape, int32_t rank, ft_tensor* out) {
  FT_TRY *out = new_handle(T(t).view(ft::dims(shape, rank))); FT_CATCH
}

FT_EXPORT int32_t ft_reshape(ft_tensor t, const int64_t* shape, int32_t rank, ft_tensor* out) {
  FT_TRY *out = new_handle(T(t).reshape(ft::dims(shape, rank))); FT_CATCH
}

FT_EXPORT int32_t ft_expand(ft_tensor t, const int64_t* shape, int32_t rank, ft_tensor* out) {
  FT_TRY *out = new_handle(T(t).expand(ft::dims(shape, rank))); FT_CATCH
}

FT_EXPORT int32_t ft_permute(ft_tensor t, const int64_t* order, int32_t rank, ft_tensor* out) {
  FT_TRY *out = new_handle(T(t).permute(ft::dims(order, rank))); FT_CATCH
}

FT_EXPORT int32_t ft_transpose(ft_tensor t, int64_t dim0, int64_t dim1, ft_tensor* out) {
  FT_TRY *out = new_handle(T(t).transpose(dim0, dim1)); FT_CATCH
}

FT_EXPORT int32_t ft_narrow(ft_tensor t, int64_t dim, int64_t start, int64_t length, ft_tensor* out) {
  FT_TRY *out = new_handle(T(t).narrow(dim, start, length)); FT_CATCH
}

FT_EXPORT int32_t ft_repeat_interleave(ft_tensor t, int64_t repeats, int64_t dim, ft_tensor* out) {
  FT_TRY *out = new_handle(T(t).repeat_interleave(repeats, dim)); FT_CATCH
}

FT_EXPORT int32_t ft_unsqueeze(ft_tensor t, int64_t dim, ft_tensor* out) {
  FT_TRY *out = new_handle(T(t).unsqueeze(dim)); FT_CATCH
}

FT_EXPORT int32_t ft_squeeze(ft_tensor t, int64_t dim, ft_tensor* out) {
  FT_TRY *out = new_handle(T(t).squeeze(dim)); FT_CATCH
}

FT_EXPORT int32_t ft_cat(const ft_tensor* tensors, int32_t count, int64_t dim, ft_tensor* out) {
  FT_TRY
  TORCH_CHECK(count > 0, "FineTune: Cat needs at least one tensor");
  std::vector<at::Tensor> list;
  list.reserve(static_cast<size_t>(count));
  for (int32_t i = 0; i < count; ++i) list.push_back(T(tensors[i]));
  *out = new_handle(at::cat(list, dim));
  FT_CATCH
}
