"""Connected components of binary masks, and the small-region clean-up of mask logits built on them.

The compiled op's sources live in the repository's ``kernels/`` folder, shipped in the package as
``sam2pp/csrc`` (a C++ CPU build, plus CUDA kernels when a GPU and ``nvcc`` are found); the op is built
with ``torch.utils.cpp_extension`` on first use into
``$XDG_CACHE_HOME/sam2pp/kernels/<variant>-<hash>`` (``~/.cache`` by default); later processes import
that build without a compiler. When it can't be built, or ``SAM2PP_KERNELS_FALLBACK=1`` is set, or a
tensor sits on a device the build does not cover, a ``scipy.ndimage.label`` fallback answers instead,
after one warning that says why.

Labels are canonical: a foreground pixel's label is 1 + the smallest row-major index ``y * W + x`` of a
pixel in its 8-connected component (background is 0), so every backend returns identical tensors.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Literal

import numpy as np
import torch
from scipy import ndimage
from torch import Tensor

FALLBACK_ENV = "SAM2PP_KERNELS_FALLBACK"
SOURCE_DIR = Path(__file__).resolve().parent / "csrc"
CPU_SOURCES = ("bindings.cpp", "connected_components_cpu.cpp")
CUDA_SOURCES = ("connected_components.cu",)
HEADERS = ("connected_components.h",)
# Arch list for CUDA builds on machines that see no GPU (compile checks, prebuilt caches).
DEFAULT_ARCH_LIST = "8.0;9.0+PTX"

# Logit written into filled holes: the published video predictor's value, just above the 0 threshold.
HOLE_LOGIT = 0.1
# Logit written into removed sprinkles: the published image post-processing's threshold - 10.
SPRINKLE_LOGIT = -10.0

Backend = Literal["cpu-extension", "cuda-extension", "fallback"]


@dataclass(frozen=True)
class _Loaded:
    """The compiled module, and why it is None or lacks CUDA kernels ("" when it has them)."""

    module: ModuleType | None
    reason: str


def connected_components(mask: Tensor) -> tuple[Tensor, Tensor]:
    """8-connected components of binary masks.

    mask: (N, 1, H, W) bool or integer tensor; nonzero is foreground.
    Returns (labels, areas), int32 (N, 1, H, W) on mask's device: labels are 1 + the smallest row-major
    index of the pixel's component (0 for background), areas the component's pixel count (0 for background).
    """
    masks = _as_uint8(mask)
    if backend(masks.device) == "fallback":
        return _fallback(masks)
    module = _load().module
    assert module is not None
    labels, areas = module.connected_components(masks)
    return labels, areas


def backend(device: torch.device | str = "cpu") -> Backend:
    """Which implementation connected_components uses for tensors on `device`; warns once when it falls back."""
    device = torch.device(device)
    loaded = _load()
    if loaded.module is None:
        _warn_once(f"connected_components uses the scipy fallback: {loaded.reason}")
        return "fallback"
    if device.type == "cpu":
        return "cpu-extension"
    if device.type == "cuda" and loaded.module.has_cuda():
        return "cuda-extension"
    why = f"it has no CUDA kernels: {loaded.reason}" if device.type == "cuda" else "it covers only CPU and CUDA"
    _warn_once(f"connected_components uses the scipy fallback (through the CPU) for {device.type} tensors: {why}")
    return "fallback"


def fill_holes_and_sprinkles(mask_logits: Tensor, max_hole_area: int, max_sprinkle_area: int = 0) -> Tensor:
    """Fills small background holes and removes small foreground specks in mask logits.

    Background (logit <= 0) components of at most `max_hole_area` pixels become HOLE_LOGIT; foreground
    components of at most `max_sprinkle_area` pixels become SPRINKLE_LOGIT. Both are found on the input,
    so a hole and a sprinkle never interact. An area of 0 turns that half off.
    mask_logits: (..., H, W) float. Returns a new tensor of the same shape, dtype and device.
    """
    if max_hole_area < 0 or max_sprinkle_area < 0:
        raise ValueError(f"areas must be >= 0: max_hole_area={max_hole_area}, max_sprinkle_area={max_sprinkle_area}")
    if mask_logits.dim() < 2 or not mask_logits.is_floating_point():
        shape = tuple(mask_logits.shape)
        raise ValueError(f"mask_logits must be a float tensor (..., H, W), got {mask_logits.dtype} {shape}")
    flat = mask_logits.reshape(-1, 1, *mask_logits.shape[-2:])
    out = flat
    if max_hole_area > 0:
        labels, areas = connected_components(flat <= 0)
        out = torch.where((labels > 0) & (areas <= max_hole_area), HOLE_LOGIT, out)
    if max_sprinkle_area > 0:
        labels, areas = connected_components(flat > 0)
        out = torch.where((labels > 0) & (areas <= max_sprinkle_area), SPRINKLE_LOGIT, out)
    return out.to(mask_logits.dtype).reshape(mask_logits.shape)


def build_extension(with_cuda: bool, verbose: bool = False) -> ModuleType:
    """Builds the extension, or imports the cached build, and returns the module.

    with_cuda adds the CUDA kernels; it needs nvcc, not a GPU (without one the arch list is
    DEFAULT_ARCH_LIST unless TORCH_CUDA_ARCH_LIST is set). Raises whatever the build raises.
    """
    missing = [name for name in CPU_SOURCES + CUDA_SOURCES + HEADERS if not (SOURCE_DIR / name).is_file()]
    if missing:
        raise FileNotFoundError(f"kernel sources {missing} are missing from {SOURCE_DIR} (reinstall sam2pp)")
    if with_cuda and _cuda_unavailable(need_device=False):
        raise RuntimeError(f"no CUDA build possible: {_cuda_unavailable(need_device=False)}")
    variant = "cuda" if with_cuda else "cpu"
    sources = CPU_SOURCES + (CUDA_SOURCES if with_cuda else ())
    define = ["-DSAM2PP_WITH_CUDA"] if with_cuda else []
    cflags, cuda_cflags = ["-O3", "-fopenmp", *define], ["-O3", *define]
    with _arch_list(with_cuda) as arch_list:
        digest = _digest(sources + HEADERS, f"{variant}|{arch_list}|{cflags}|{cuda_cflags}")
        name = f"sam2pp_cc_{variant}_{digest[:12]}"
        build_dir = _cache_root() / f"{variant}-{digest[:16]}"
        built = build_dir / f"{name}.so"
        if name not in _modules and built.is_file() and not (build_dir / "lock").exists():
            _modules[name] = _import_built(name, built)
        if name not in _modules:
            _modules[name] = _compile(name, sources, build_dir, cflags, cuda_cflags, with_cuda, verbose)
    return _modules[name]


@lru_cache(maxsize=1)
def _load() -> _Loaded:
    """Builds or imports the extension once per process, with CUDA kernels when a GPU and nvcc are present."""
    if os.environ.get(FALLBACK_ENV, "") not in ("", "0"):
        return _Loaded(None, f"forced by {FALLBACK_ENV}={os.environ[FALLBACK_ENV]}")
    no_cuda = _cuda_unavailable(need_device=True)
    if not no_cuda:
        try:
            return _Loaded(build_extension(with_cuda=True), "")
        except Exception as error:  # the CPU build may still work; the reason is shown for CUDA tensors
            no_cuda = f"the CUDA build failed ({_summary(error)})"
    try:
        return _Loaded(build_extension(with_cuda=False), no_cuda)
    except Exception as error:  # any build failure means the fallback, explained once
        return _Loaded(None, f"the extension could not be built ({_summary(error)})")


def _cuda_unavailable(need_device: bool) -> str:
    """Why CUDA kernels can't be built (or used, with need_device), or "" when they can."""
    if torch.version.cuda is None:
        return "torch is a CPU-only build"
    if need_device and not torch.cuda.is_available():
        return "no CUDA device is visible"
    if _cpp_extension().CUDA_HOME is None:
        return "nvcc was not found (set CUDA_HOME)"
    return ""


def _cpp_extension() -> ModuleType:
    """`torch.utils.cpp_extension`, imported without the "No CUDA runtime is found" warning it logs at import when a
    CUDA toolkit is installed but no GPU is visible: builds without a GPU are CPU builds (or CUDA builds for a
    DEFAULT_ARCH_LIST), which need no CUDA runtime, so the warning would only alarm a CPU user."""
    logger = logging.getLogger("torch.utils.cpp_extension")
    level = logger.level
    if not torch.cuda.is_available():
        logger.setLevel(logging.ERROR)
    try:
        from torch.utils import cpp_extension
    finally:
        logger.setLevel(level)
    return cpp_extension


def _summary(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[-1]}" if lines else type(error).__name__


def _compile(
    name: str,
    sources: tuple[str, ...],
    build_dir: Path,
    cflags: list[str],
    cuda_cflags: list[str],
    with_cuda: bool,
    verbose: bool,
) -> ModuleType:
    cpp_extension = _cpp_extension()
    build_dir.mkdir(parents=True, exist_ok=True)
    return cpp_extension.load(
        name=name,
        sources=[str(SOURCE_DIR / source) for source in sources],
        extra_cflags=cflags,
        extra_cuda_cflags=cuda_cflags,
        extra_ldflags=["-fopenmp", *(_cuda_link_flags(build_dir) if with_cuda else [])],
        extra_include_paths=_cuda_include_paths() if with_cuda else [],
        build_directory=str(build_dir),
        with_cuda=with_cuda,
        verbose=verbose,
    )


def _as_uint8(mask: Tensor) -> Tensor:
    if not isinstance(mask, Tensor):
        raise TypeError(f"mask must be a torch.Tensor, got {type(mask).__name__}")
    if mask.dim() != 4 or mask.shape[1] != 1:
        raise ValueError(f"mask must have shape (N, 1, H, W), got {tuple(mask.shape)}")
    if mask.is_floating_point() or mask.is_complex():
        raise TypeError(f"mask must be bool or integer (threshold logits first, e.g. mask > 0), got {mask.dtype}")
    if mask.dtype not in (torch.bool, torch.uint8):
        mask = mask != 0
    return mask.to(torch.uint8).contiguous()


def _fallback(masks: Tensor) -> tuple[Tensor, Tensor]:
    """scipy.ndimage.label per image, relabelled canonically; (N, 1, H, W) uint8 in, int32 on masks' device out."""
    labels = np.zeros(masks.shape, dtype=np.int32)
    areas = np.zeros(masks.shape, dtype=np.int32)
    for index, image in enumerate(masks[:, 0].cpu().numpy()):
        labels[index, 0], areas[index, 0] = _label_image(image)
    return torch.from_numpy(labels).to(masks.device), torch.from_numpy(areas).to(masks.device)


def _label_image(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) uint8 -> canonical labels and areas (H, W); scipy numbers components 1..K in its own order."""
    raw, count = ndimage.label(image, structure=np.ones((3, 3), dtype=bool))
    flat = raw.ravel()
    first = np.full(count + 1, -1, dtype=np.int64)
    first[1:] = flat.size
    np.minimum.at(first, flat, np.arange(flat.size))
    sizes = np.bincount(flat, minlength=count + 1)
    sizes[0] = 0
    return (first[flat] + 1).reshape(image.shape), sizes[flat].reshape(image.shape)


_warned: set[str] = set()
_modules: dict[str, ModuleType] = {}


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "sam2pp" / "kernels"


def _digest(files: tuple[str, ...], options: str) -> str:
    """Hash of everything that changes the binary: sources, torch and CUDA versions, build options."""
    hasher = hashlib.sha256()
    for name in files:
        hasher.update(name.encode())
        hasher.update((SOURCE_DIR / name).read_bytes())
    hasher.update(f"{torch.__version__}|{torch.version.cuda}|{options}".encode())
    return hasher.hexdigest()


@contextmanager
def _arch_list(with_cuda: bool) -> Iterator[str]:
    """Yields the CUDA arch list of this build, setting DEFAULT_ARCH_LIST while no GPU is visible."""
    if not with_cuda:
        yield ""
        return
    current = os.environ.get("TORCH_CUDA_ARCH_LIST")
    if current:
        yield current
        return
    if torch.cuda.device_count() > 0:
        caps = sorted({torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())})
        yield ";".join(f"{major}.{minor}" for major, minor in caps)
        return
    os.environ["TORCH_CUDA_ARCH_LIST"] = DEFAULT_ARCH_LIST
    try:
        yield DEFAULT_ARCH_LIST
    finally:
        del os.environ["TORCH_CUDA_ARCH_LIST"]


def _nvidia_dirs(kind: str) -> list[Path]:
    """`include` or `lib` folders of the CUDA pip wheels torch depends on (nvidia/cu*/...)."""
    spec = importlib.util.find_spec("nvidia")
    roots = list(spec.submodule_search_locations or []) if spec else []
    return sorted(path for root in roots for path in Path(root).glob(f"cu[0-9]*/{kind}") if path.is_dir())


def _cuda_include_paths() -> list[str]:
    """ATen's CUDA headers include cusparse.h and friends, which a bare toolkit may lack; the wheels ship them."""
    return [str(path) for path in _nvidia_dirs("include")]


def _cuda_link_flags(build_dir: Path) -> list[str]:
    """-L to a libcudart.so when the toolkit has none: the wheel ships only libcudart.so.<major>."""
    if (Path(_cpp_extension().CUDA_HOME or "") / "lib64" / "libcudart.so").exists():
        return []
    for lib_dir in _nvidia_dirs("lib"):
        versioned = sorted(lib_dir.glob("libcudart.so.*"))
        if versioned:
            link_dir = build_dir / "cudart"
            link_dir.mkdir(exist_ok=True)
            link = link_dir / "libcudart.so"
            if not link.exists():
                link.symlink_to(versioned[0])
            return [f"-L{link_dir}"]
    return []


def _import_built(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import the built extension {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
