"""Connected components: compiled CPU op vs scipy fallback vs a plain BFS, hole filling, CUDA when present."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import deque

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils import cpp_extension

from sam2pp import kernels

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device visible to torch")


@pytest.fixture(scope="module")
def cpu_op():
    """The compiled CPU op; a build failure fails these tests rather than skipping them."""
    return kernels.build_extension(with_cuda=False).connected_components


@pytest.fixture
def fresh_loader(monkeypatch):
    """Forgets the cached load and the warnings already given, before and after the test."""
    monkeypatch.setattr(kernels, "_warned", set())
    kernels._load.cache_clear()
    yield
    kernels._load.cache_clear()


def random_masks(shape: tuple[int, ...], density: float, seed: int, blob: int = 1) -> torch.Tensor:
    """uint8 masks; blob > 1 thresholds upsampled noise into large irregular regions."""
    generator = torch.Generator().manual_seed(seed)
    n, c, h, w = shape
    noise = torch.rand(n, c, -(-h // blob), -(-w // blob), generator=generator)
    if blob > 1:
        noise = F.interpolate(noise, scale_factor=blob, mode="bilinear", align_corners=False)[..., :h, :w]
        noise = noise + 0.05 * torch.rand(shape, generator=generator)
    return (noise < torch.quantile(noise.flatten()[:100_000], density)).to(torch.uint8)


def bfs_labels(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reference: canonical 8-connected labels and areas by breadth-first search, pixel by pixel."""
    h, w = image.shape
    labels = np.zeros((h, w), dtype=np.int64)
    areas = np.zeros((h, w), dtype=np.int64)
    for start in range(h * w):
        y0, x0 = divmod(start, w)
        if not image[y0, x0] or labels[y0, x0]:
            continue
        labels[y0, x0] = start + 1
        queue, members = deque([(y0, x0)]), []
        while queue:
            y, x = queue.popleft()
            members.append((y, x))
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    ny, nx = y + dy, x + dx
                    if 0 <= ny < h and 0 <= nx < w and image[ny, nx] and not labels[ny, nx]:
                        labels[ny, nx] = start + 1
                        queue.append((ny, nx))
        for y, x in members:
            areas[y, x] = len(members)
    return labels, areas


def assert_consistent(masks: torch.Tensor, labels: torch.Tensor, areas: torch.Tensor) -> None:
    """Labels are 0 exactly on background, each label's first pixel is its own index, areas count labels."""
    assert labels.dtype == areas.dtype == torch.int32 and labels.shape == areas.shape == masks.shape
    foreground = masks.bool()
    assert torch.equal(labels > 0, foreground) and torch.equal(areas > 0, foreground)
    for image, label_image, area_image in zip(masks[:, 0], labels[:, 0].long(), areas[:, 0].long()):
        flat = label_image.flatten()
        ids, counts = torch.unique(flat[flat > 0], return_counts=True)
        index = torch.arange(flat.numel())
        first = torch.full((flat.numel() + 1,), flat.numel()).scatter_reduce(0, flat, index, reduce="amin")
        assert torch.equal(first[ids], ids - 1)
        lookup = torch.zeros(flat.numel() + 1, dtype=torch.long)
        lookup[ids] = counts
        assert torch.equal(area_image.flatten(), lookup[flat])
        assert image.flatten()[ids - 1].all()


@pytest.mark.parametrize("seed", range(6))
def test_tiny_masks_match_bfs(cpu_op, seed):
    masks = random_masks((4, 1, 9, 13), density=0.3 + 0.1 * seed, seed=seed)
    labels, areas = cpu_op(masks)
    fallback_labels, fallback_areas = kernels._fallback(masks)
    for index, image in enumerate(masks[:, 0].numpy()):
        expected_labels, expected_areas = bfs_labels(image)
        np.testing.assert_array_equal(labels[index, 0].numpy(), expected_labels)
        np.testing.assert_array_equal(areas[index, 0].numpy(), expected_areas)
        np.testing.assert_array_equal(fallback_labels[index, 0].numpy(), expected_labels)
        np.testing.assert_array_equal(fallback_areas[index, 0].numpy(), expected_areas)


@pytest.mark.parametrize(
    ("shape", "density", "blob"),
    [
        ((1, 1, 1, 1), 0.5, 1),
        ((3, 1, 1, 57), 0.5, 1),
        ((3, 1, 57, 1), 0.5, 1),
        ((2, 1, 31, 47), 0.1, 1),
        ((5, 1, 64, 64), 0.45, 1),
        ((2, 1, 101, 77), 0.6, 1),
        ((2, 1, 128, 96), 0.9, 1),
        ((3, 1, 120, 160), 0.5, 8),
        ((2, 1, 257, 129), 0.3, 16),
    ],
)
def test_cpu_op_matches_fallback(cpu_op, shape, density, blob):
    masks = random_masks(shape, density, seed=sum(shape), blob=blob)
    labels, areas = cpu_op(masks)
    fallback_labels, fallback_areas = kernels._fallback(masks)
    assert torch.equal(labels, fallback_labels) and torch.equal(areas, fallback_areas)
    assert_consistent(masks, labels, areas)


@pytest.mark.parametrize("blob", [1, 24])
def test_full_hd_frame_matches_fallback(cpu_op, blob):
    masks = random_masks((1, 1, 1080, 1920), 0.55, seed=blob, blob=blob)
    labels, areas = cpu_op(masks)
    fallback_labels, fallback_areas = kernels._fallback(masks)
    assert torch.equal(labels, fallback_labels) and torch.equal(areas, fallback_areas)


def test_empty_and_full_masks(cpu_op):
    masks = torch.zeros(2, 1, 40, 30, dtype=torch.uint8)
    masks[1] = 1
    labels, areas = cpu_op(masks)
    assert not labels[0].any() and not areas[0].any()
    assert (labels[1] == 1).all() and (areas[1] == 40 * 30).all()
    assert torch.equal(labels, kernels._fallback(masks)[0])


def test_zero_sized_batches(cpu_op):
    for shape in [(0, 1, 8, 8), (2, 1, 0, 5)]:
        masks = torch.zeros(shape, dtype=torch.uint8)
        for labels, areas in [cpu_op(masks), kernels._fallback(masks)]:
            assert labels.shape == areas.shape == shape and labels.dtype == torch.int32


def test_batch_items_are_independent(cpu_op):
    masks = random_masks((4, 1, 50, 70), 0.5, seed=7)
    labels, areas = cpu_op(masks)
    for index in range(4):
        single_labels, single_areas = cpu_op(masks[index : index + 1].contiguous())
        assert torch.equal(labels[index : index + 1], single_labels)
        assert torch.equal(areas[index : index + 1], single_areas)


def test_diagonal_neighbours_join_and_labels_are_first_pixels(cpu_op):
    masks = torch.tensor([[1, 0, 0, 1], [0, 1, 0, 0], [0, 0, 0, 1], [1, 0, 1, 0]], dtype=torch.uint8)[None, None]
    labels, areas = cpu_op(masks)
    expected = torch.tensor([[1, 0, 0, 4], [0, 1, 0, 0], [0, 0, 0, 12], [13, 0, 12, 0]], dtype=torch.int32)
    assert torch.equal(labels[0, 0], expected)
    expected = torch.tensor([[2, 0, 0, 1], [0, 2, 0, 0], [0, 0, 0, 2], [1, 0, 2, 0]], dtype=torch.int32)
    assert torch.equal(areas[0, 0], expected)


def test_cpu_op_rejects_bad_input(cpu_op):
    with pytest.raises(RuntimeError, match=r"\(N, 1, H, W\)"):
        cpu_op(torch.zeros(1, 2, 4, 4, dtype=torch.uint8))
    with pytest.raises(RuntimeError, match="uint8"):
        cpu_op(torch.zeros(1, 1, 4, 4, dtype=torch.int32))


def test_public_function_accepts_bool_and_integer_masks():
    masks = random_masks((2, 1, 20, 20), 0.5, seed=3)
    labels, areas = kernels.connected_components(masks)
    for variant in (masks.bool(), masks.long() * 7, masks * 255):
        other_labels, other_areas = kernels.connected_components(variant)
        assert torch.equal(labels, other_labels) and torch.equal(areas, other_areas)


def test_public_function_names_bad_input():
    with pytest.raises(TypeError, match="threshold logits first"):
        kernels.connected_components(torch.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        kernels.connected_components(torch.zeros(4, 4, dtype=torch.bool))


def test_backend_reports_the_compiled_op(cpu_op, fresh_loader, monkeypatch):
    monkeypatch.delenv(kernels.FALLBACK_ENV, raising=False)
    assert kernels.backend("cpu") == "cpu-extension"


def test_forced_fallback_warns_once_and_agrees(cpu_op, fresh_loader, monkeypatch):
    monkeypatch.setenv(kernels.FALLBACK_ENV, "1")
    masks = random_masks((2, 1, 33, 44), 0.5, seed=11)
    with pytest.warns(RuntimeWarning, match=kernels.FALLBACK_ENV):
        labels, areas = kernels.connected_components(masks)
    assert kernels.backend() == "fallback"
    expected_labels, expected_areas = cpu_op(masks)
    assert torch.equal(labels, expected_labels) and torch.equal(areas, expected_areas)


def crafted_logits() -> torch.Tensor:
    """12x12: a foreground square (rows/cols 1..8) with a 1-pixel and a 2x2 hole, plus a lone speck."""
    logits = torch.full((12, 12), -5.0)
    logits[1:9, 1:9] = 3.0
    logits[2, 2] = -1.0
    logits[5:7, 5:7] = -2.0
    logits[10, 10] = 4.0
    return logits


def test_fill_holes_fills_only_small_background_components():
    logits = crafted_logits()
    filled = kernels.fill_holes_and_sprinkles(logits[None, None], 1)[0, 0]
    expected = logits.clone()
    expected[2, 2] = kernels.HOLE_LOGIT
    assert torch.equal(filled, expected)
    filled = kernels.fill_holes_and_sprinkles(logits[None, None], 4)[0, 0]
    expected[5:7, 5:7] = kernels.HOLE_LOGIT
    assert torch.equal(filled, expected)


def test_sprinkles_are_removed_from_the_input_mask():
    logits = crafted_logits()
    cleaned = kernels.fill_holes_and_sprinkles(logits, 4, max_sprinkle_area=1)
    assert cleaned[10, 10] == kernels.SPRINKLE_LOGIT
    assert cleaned[2, 2] == kernels.HOLE_LOGIT and (cleaned[5:7, 5:7] == kernels.HOLE_LOGIT).all()
    assert (cleaned[1:9, 1] == 3.0).all() and cleaned[0, 0] == -5.0
    assert kernels.fill_holes_and_sprinkles(logits, 0)[10, 10] == 4.0


def test_fill_holes_keeps_shape_and_dtype_and_handles_batches():
    logits = torch.stack([crafted_logits(), -crafted_logits()]).reshape(2, 1, 1, 12, 12).half()
    filled = kernels.fill_holes_and_sprinkles(logits, 1)
    assert filled.shape == logits.shape and filled.dtype == torch.float16
    assert filled[0, 0, 0, 2, 2] == torch.tensor(kernels.HOLE_LOGIT, dtype=torch.float16)
    assert filled[1, 0, 0, 10, 10] == torch.tensor(kernels.HOLE_LOGIT, dtype=torch.float16)
    assert filled[1, 0, 0, 2, 2] == 1.0


def test_fill_holes_rejects_bad_arguments():
    with pytest.raises(ValueError, match="max_hole_area"):
        kernels.fill_holes_and_sprinkles(crafted_logits(), -1)
    with pytest.raises(ValueError, match="float"):
        kernels.fill_holes_and_sprinkles(crafted_logits() > 0, 2)


@pytest.mark.skipif(
    cpp_extension.CUDA_HOME is None or torch.version.cuda is None,
    reason="nvcc (CUDA_HOME) or a CUDA build of torch is missing",
)
def test_cuda_variant_compiles():
    """Builds the CUDA kernels without needing a GPU (about a minute on two cores when not cached)."""
    module = kernels.build_extension(with_cuda=True)
    assert module.has_cuda()


@needs_gpu
@pytest.mark.parametrize(
    ("shape", "density", "blob"),
    [
        ((1, 1, 1, 1), 0.5, 1),
        ((3, 1, 1, 57), 0.5, 1),
        ((5, 1, 64, 64), 0.45, 1),
        ((2, 1, 101, 77), 0.6, 1),
        ((3, 1, 120, 160), 0.5, 8),
        ((8, 1, 256, 256), 0.55, 1),
        ((1, 1, 1080, 1920), 0.55, 1),
        ((2, 1, 1080, 1920), 0.5, 24),
    ],
)
def test_cuda_op_matches_cpu_op(cpu_op, shape, density, blob):
    masks = random_masks(shape, density, seed=sum(shape), blob=blob)
    cuda_op = kernels.build_extension(with_cuda=True).connected_components
    labels, areas = cuda_op(masks.cuda())
    expected_labels, expected_areas = cpu_op(masks)
    assert labels.is_cuda and areas.is_cuda
    assert torch.equal(labels.cpu(), expected_labels) and torch.equal(areas.cpu(), expected_areas)


@needs_gpu
def test_cuda_empty_full_and_public_path(cpu_op):
    masks = torch.zeros(3, 1, 40, 30, dtype=torch.uint8)
    masks[1] = 1
    masks[2, 0, ::2, ::2] = 1
    labels, areas = kernels.connected_components(masks.cuda())
    assert kernels.backend("cuda") == "cuda-extension"
    expected_labels, expected_areas = cpu_op(masks)
    assert torch.equal(labels.cpu(), expected_labels) and torch.equal(areas.cpu(), expected_areas)
    logits = crafted_logits()[None, None]
    filled = kernels.fill_holes_and_sprinkles(logits.cuda(), 4, max_sprinkle_area=1)
    assert torch.equal(filled.cpu(), kernels.fill_holes_and_sprinkles(logits, 4, max_sprinkle_area=1))


def test_failed_build_falls_back_with_the_reason(fresh_loader, monkeypatch, tmp_path):
    monkeypatch.delenv(kernels.FALLBACK_ENV, raising=False)
    monkeypatch.setattr(kernels, "SOURCE_DIR", tmp_path)
    masks = random_masks((1, 1, 16, 16), 0.5, seed=5)
    with pytest.warns(RuntimeWarning, match="could not be built.*missing"):
        labels, _ = kernels.connected_components(masks)
    assert kernels.backend() == "fallback"
    assert torch.equal(labels, kernels._fallback(masks)[0])


def test_cpu_builds_do_not_warn_about_a_missing_cuda_runtime():
    """torch logs "No CUDA runtime is found" when cpp_extension is imported with a toolkit but no GPU; a CPU user
    (a notebook on a laptop) must not see it."""
    code = "from sam2pp.kernels import _cpp_extension; _cpp_extension()"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "CUDA_VISIBLE_DEVICES": "", "CUDA_HOME": sys.prefix})
    assert done.returncode == 0, done.stderr
    assert "No CUDA runtime" not in done.stderr
