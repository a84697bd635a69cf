// Python entry point: one op that dispatches on the tensor's device.

#include <torch/extension.h>

#include "connected_components.h"

namespace {

std::tuple<at::Tensor, at::Tensor> connected_components(const at::Tensor& masks) {
  if (masks.is_cuda()) {
#ifdef SAM2PP_WITH_CUDA
    return sam2pp::connected_components_cuda(masks);
#else
    TORCH_CHECK(false, "connected_components: this build has no CUDA support; masks are on ", masks.device());
#endif
  }
  TORCH_CHECK(masks.device().is_cpu(), "connected_components: unsupported device ", masks.device());
  return sam2pp::connected_components_cpu(masks);
}

bool has_cuda() {
#ifdef SAM2PP_WITH_CUDA
  return true;
#else
  return false;
#endif
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("connected_components", &connected_components, py::arg("masks"),
        "8-connected component labels and areas of uint8 masks (N, 1, H, W); labels are 1 + the "
        "component's smallest row-major pixel index, 0 for background.");
  m.def("has_cuda", &has_cuda, "Whether this build includes the CUDA kernels.");
}
