// Connected components of binary masks: the interface shared by the CPU and CUDA builds.
#pragma once

#include <ATen/ATen.h>

#include <tuple>

namespace sam2pp {

// Labels the 8-connected foreground components of `masks` (N, 1, H, W), uint8, contiguous.
//
// Returns (labels, areas), both int32 of the same shape. A foreground pixel's label is
// 1 + the smallest row-major index (y * W + x) of a pixel in its component, so labels are
// identical on every backend; its area is that component's pixel count. Background gets 0 in both.
std::tuple<at::Tensor, at::Tensor> connected_components_cpu(const at::Tensor& masks);

#ifdef SAM2PP_WITH_CUDA
std::tuple<at::Tensor, at::Tensor> connected_components_cuda(const at::Tensor& masks);
#endif

// Checks shape, dtype and size limits shared by both builds; names the problem when one fails.
void check_masks(const at::Tensor& masks);

}  // namespace sam2pp
