// CPU connected components: one raster-order union-find pass per image, images in parallel.
//
// Every parent index is smaller than its child (unions keep the smaller root and path halving
// only shortens chains), so each root is its component's first pixel in raster order and a
// single forward pass resolves every pixel to its root.

#include "connected_components.h"

#include <ATen/Parallel.h>

#include <limits>

namespace sam2pp {
namespace {

int32_t find_root(int32_t* parent, int32_t i) {
  while (parent[i] != i) {
    parent[i] = parent[parent[i]];
    i = parent[i];
  }
  return i;
}

void unite(int32_t* parent, int32_t a, int32_t b) {
  a = find_root(parent, a);
  b = find_root(parent, b);
  if (a < b) {
    parent[b] = a;
  } else if (b < a) {
    parent[a] = b;
  }
}

// Joins pixel i with its already-visited foreground neighbours. When the pixel above is
// foreground it touches the other three (left, up-left, up-right), which are therefore
// already joined to it; likewise the left pixel touches up-left.
void link_pixel(const uint8_t* fg, int32_t* parent, int32_t i, int32_t y, int32_t x, int32_t W) {
  const bool has_up = y > 0;
  if (has_up && fg[i - W]) {
    unite(parent, i, i - W);
    return;
  }
  if (x > 0 && fg[i - 1]) {
    unite(parent, i, i - 1);
  } else if (has_up && x > 0 && fg[i - W - 1]) {
    unite(parent, i, i - W - 1);
  }
  if (has_up && x + 1 < W && fg[i - W + 1]) {
    unite(parent, i, i - W + 1);
  }
}

// labels doubles as the union-find parent array; areas must start zeroed.
void label_image(const uint8_t* fg, int32_t* labels, int32_t* areas, int32_t H, int32_t W) {
  const int32_t size = H * W;
  for (int32_t i = 0; i < size; ++i) {
    labels[i] = i;
    if (fg[i]) {
      link_pixel(fg, labels, i, i / W, i % W, W);
    }
  }
  for (int32_t i = 0; i < size; ++i) {
    if (fg[i]) {
      labels[i] = labels[labels[i]];
      ++areas[labels[i]];
    }
  }
  for (int32_t i = 0; i < size; ++i) {
    if (fg[i]) {
      areas[i] = areas[labels[i]];
      labels[i] += 1;
    } else {
      labels[i] = 0;
    }
  }
}

}  // namespace

void check_masks(const at::Tensor& masks) {
  TORCH_CHECK(masks.dim() == 4 && masks.size(1) == 1,
              "connected_components: masks must have shape (N, 1, H, W), got ", masks.sizes());
  TORCH_CHECK(masks.scalar_type() == at::kByte,
              "connected_components: masks must be uint8, got ", masks.scalar_type());
  TORCH_CHECK(masks.is_contiguous(), "connected_components: masks must be contiguous");
  TORCH_CHECK(masks.size(2) * masks.size(3) < std::numeric_limits<int32_t>::max(),
              "connected_components: H * W = ", masks.size(2) * masks.size(3),
              " does not fit int32 labels");
}

std::tuple<at::Tensor, at::Tensor> connected_components_cpu(const at::Tensor& masks) {
  check_masks(masks);
  TORCH_CHECK(masks.device().is_cpu(), "connected_components_cpu: masks must be on the CPU");
  const int64_t N = masks.size(0), H = masks.size(2), W = masks.size(3);
  auto labels = at::empty(masks.sizes(), masks.options().dtype(at::kInt));
  auto areas = at::zeros(masks.sizes(), masks.options().dtype(at::kInt));
  const uint8_t* fg = masks.data_ptr<uint8_t>();
  int32_t* label_ptr = labels.data_ptr<int32_t>();
  int32_t* area_ptr = areas.data_ptr<int32_t>();
  at::parallel_for(0, N, 1, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) {
      const int64_t offset = n * H * W;
      label_image(fg + offset, label_ptr + offset, area_ptr + offset, static_cast<int32_t>(H), static_cast<int32_t>(W));
    }
  });
  return {labels, areas};
}

}  // namespace sam2pp
