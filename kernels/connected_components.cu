// CUDA connected components: parallel union-find with atomicMin linking, one thread per pixel.
//
// Roots always link to the smaller index, so each component's final root is its smallest
// row-major pixel index, the same canonical label the CPU build produces. Four launches per
// batch: init, link, flatten + count, finalize. Images run side by side along grid.y.

#include "connected_components.h"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>

namespace sam2pp {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxGridY = 65535;

// Parents only ever decrease, so a stale read still points at an ancestor; __ldcg skips the
// non-coherent L1 so chains shorten as soon as other threads link.
__device__ int32_t find_root(const int32_t* parent, int32_t i) {
  int32_t p = __ldcg(parent + i);
  while (p != i) {
    i = p;
    p = __ldcg(parent + i);
  }
  return i;
}

__device__ void unite(int32_t* parent, int32_t a, int32_t b) {
  while (true) {
    a = find_root(parent, a);
    b = find_root(parent, b);
    if (a == b) {
      return;
    }
    if (a < b) {
      const int32_t t = a;
      a = b;
      b = t;
    }
    // a is the larger root: point it at b unless another thread moved it first.
    const int32_t old = atomicMin(parent + a, b);
    if (old == a) {
      return;
    }
    a = old;
  }
}

__global__ void init_kernel(int32_t* labels, int64_t size, int64_t batch) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= size) {
    return;
  }
  for (int64_t n = blockIdx.y; n < batch; n += gridDim.y) {
    labels[n * size + i] = static_cast<int32_t>(i);
  }
}

// Same neighbour rule as the CPU build: the pixel above covers left, up-left and up-right;
// the left pixel covers up-left.
__global__ void link_kernel(const uint8_t* masks, int32_t* labels, int64_t H, int64_t W, int64_t batch) {
  const int64_t size = H * W;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= size) {
    return;
  }
  const int64_t y = i / W, x = i % W;
  const int32_t p = static_cast<int32_t>(i), w = static_cast<int32_t>(W);
  for (int64_t n = blockIdx.y; n < batch; n += gridDim.y) {
    const uint8_t* fg = masks + n * size;
    int32_t* parent = labels + n * size;
    if (!fg[i]) {
      continue;
    }
    if (y > 0 && fg[i - W]) {
      unite(parent, p, p - w);
      continue;
    }
    if (x > 0 && fg[i - 1]) {
      unite(parent, p, p - 1);
    } else if (y > 0 && x > 0 && fg[i - W - 1]) {
      unite(parent, p, p - w - 1);
    }
    if (y > 0 && x + 1 < W && fg[i - W + 1]) {
      unite(parent, p, p - w + 1);
    }
  }
}

// Points every foreground pixel straight at its root and counts the root's pixels.
__global__ void flatten_count_kernel(const uint8_t* masks, int32_t* labels, int32_t* areas, int64_t size,
                                     int64_t batch) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= size) {
    return;
  }
  for (int64_t n = blockIdx.y; n < batch; n += gridDim.y) {
    if (!masks[n * size + i]) {
      continue;
    }
    int32_t* parent = labels + n * size;
    const int32_t root = find_root(parent, static_cast<int32_t>(i));
    parent[i] = root;
    atomicAdd(areas + n * size + root, 1);
  }
}

// Root slots hold the counts and are read only; every other slot is written by its own thread.
__global__ void finalize_kernel(const uint8_t* masks, int32_t* labels, int32_t* areas, int64_t size,
                                int64_t batch) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= size) {
    return;
  }
  for (int64_t n = blockIdx.y; n < batch; n += gridDim.y) {
    const int64_t k = n * size + i;
    if (!masks[k]) {
      labels[k] = 0;
      continue;
    }
    const int32_t root = labels[k];
    if (root != i) {
      areas[k] = areas[n * size + root];
    }
    labels[k] = root + 1;
  }
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> connected_components_cuda(const at::Tensor& masks) {
  check_masks(masks);
  TORCH_CHECK(masks.is_cuda(), "connected_components_cuda: masks must be a CUDA tensor");
  const c10::cuda::CUDAGuard guard(masks.device());
  const int64_t N = masks.size(0), H = masks.size(2), W = masks.size(3);
  const int64_t size = H * W;
  auto labels = at::empty(masks.sizes(), masks.options().dtype(at::kInt));
  auto areas = at::zeros(masks.sizes(), masks.options().dtype(at::kInt));
  if (N == 0 || size == 0) {
    return {labels, areas};
  }
  const dim3 grid(static_cast<unsigned>((size + kThreads - 1) / kThreads),
                  static_cast<unsigned>(std::min<int64_t>(N, kMaxGridY)));
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  const uint8_t* fg = masks.data_ptr<uint8_t>();
  int32_t* label_ptr = labels.data_ptr<int32_t>();
  int32_t* area_ptr = areas.data_ptr<int32_t>();

  init_kernel<<<grid, kThreads, 0, stream>>>(label_ptr, size, N);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  link_kernel<<<grid, kThreads, 0, stream>>>(fg, label_ptr, H, W, N);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  flatten_count_kernel<<<grid, kThreads, 0, stream>>>(fg, label_ptr, area_ptr, size, N);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  finalize_kernel<<<grid, kThreads, 0, stream>>>(fg, label_ptr, area_ptr, size, N);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {labels, areas};
}

}  // namespace sam2pp
