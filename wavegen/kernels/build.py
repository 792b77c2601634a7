"""Just-in-time builds of the compiled kernels, cached on disk.

Nothing is compiled at import time: :func:`load` builds an extension the first time
a kernel is asked for, into ``$WAVEGEN_KERNEL_CACHE`` (default
``~/.cache/wavegen/kernels``) under a folder named by a hash of the sources, the
torch version and the compiler flags, so a rebuild happens only when one of those
changes. A later process finds the built library and only loads it.

A build that cannot happen (no compiler, no nvcc, a compile error) is reported in
ONE warning line per backend and process; callers then use the reference path.
A build, or a wait for another process's build of the same folder, says so on
stderr when it starts and when it ends (it takes seconds); a warm cache says nothing.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch

CSRC = Path(__file__).resolve().parent / "csrc"

# Each extension: its compiled sources plus the headers they include (hashed too).
EXTENSIONS = {
    "cpu": {
        "sources": ["cpu_ops.cpp", "wavenet_cpu.cpp", "vocoder_cpu.cpp"],
        "headers": ["cpu_kernels.h", "cpu_simd.h", "wavenet_problem.h", "wavenet_checks.h"],
    },
    "cuda": {
        "sources": ["cuda_bindings.cpp", "wavenet_cuda.cu", "vocoder_cuda.cu"],
        "headers": ["wavenet_problem.h", "wavenet_checks.h", "cuda_launch.h"],
    },
}


@dataclass
class BuildResult:
    ok: bool
    library: Optional[str] = None
    error: Optional[str] = None
    seconds: float = 0.0
    flags: list[str] = field(default_factory=list)


_results: dict[str, BuildResult] = {}
_warned: set[str] = set()
_lock = threading.Lock()


def cache_root() -> Path:
    env = os.environ.get("WAVEGEN_KERNEL_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "wavegen" / "kernels"


# ----------------------------------------------------------------------------- toolchains


def x86_vector_flags() -> list[str]:
    """AVX2/FMA/F16C code generation where this CPU has all three, else none (portable code)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return []
    try:
        capability = torch.backends.cpu.get_cpu_capability()
    except Exception:  # pragma: no cover - very old torch
        capability = "DEFAULT"
    if capability not in ("AVX2", "AVX512"):
        return []
    try:
        flags = Path("/proc/cpuinfo").read_text().split("flags", 2)[1].split("\n", 1)[0].split()
    except (OSError, IndexError):
        flags = []
    if flags and not {"avx2", "fma", "f16c"} <= set(flags):
        return []
    return ["-mavx2", "-mfma", "-mf16c"]


def cpu_flags() -> list[str]:
    return ["-O3", "-fopenmp", *x86_vector_flags()]


def find_cuda_home() -> Optional[str]:
    """The CUDA toolkit root: $CUDA_HOME / $CUDA_PATH, else where ``nvcc`` on PATH says it lives."""
    for name in ("CUDA_HOME", "CUDA_PATH"):
        home = os.environ.get(name)
        if home and (Path(home) / "bin" / "nvcc").exists():
            return home
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        default = Path("/usr/local/cuda")
        return str(default) if (default / "bin" / "nvcc").exists() else None
    real = Path(os.path.realpath(nvcc))
    if (real.parent.parent / "include" / "cuda_runtime.h").exists():
        return str(real.parent.parent)
    # nvcc may be a wrapper script; nvcc itself reports its install root in a dry run.
    try:
        dry = subprocess.run([nvcc, "--dryrun", "-c", "-x", "cu", os.devnull], capture_output=True, text=True,
                             timeout=60)
        match = re.search(r"^#\$ TOP=(.+)$", dry.stdout + dry.stderr, re.MULTILINE)
        if match:
            return str(Path(match.group(1).strip()).resolve())
    except (OSError, subprocess.SubprocessError):
        pass
    return None


def cuda_arch_list(device: Optional[int] = None) -> str:
    """TORCH_CUDA_ARCH_LIST for the build: the env var if set, else the current GPU's arch (+PTX)."""
    env = os.environ.get("TORCH_CUDA_ARCH_LIST")
    if env:
        return env
    if torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability(device)
        return f"{major}.{minor}+PTX"
    return "8.0;9.0+PTX"


def cuda_flags() -> list[str]:
    # No --use_fast_math: the gate and the sampler must agree with the reference.
    return ["-O3", "-lineinfo"]


def _ninja_on_path() -> None:
    """cpp_extension runs ``ninja`` by name; a venv's ninja is not on PATH unless activated."""
    if shutil.which("ninja"):
        return
    candidates = [Path(sys.executable).parent]
    try:
        import ninja  # the PyPI wheel knows where its binary is

        candidates.insert(0, Path(ninja.BIN_DIR))
    except Exception:
        pass
    for folder in candidates:
        if (folder / "ninja").exists():
            os.environ["PATH"] = f"{folder}{os.pathsep}{os.environ.get('PATH', '')}"
            return


def _import_cpp_extension():
    """torch.utils.cpp_extension, without its import-time "No CUDA runtime is found" log line."""
    import logging

    log = logging.getLogger("torch.utils.cpp_extension")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        from torch.utils import cpp_extension
    finally:
        log.setLevel(level)
    return cpp_extension


def build_key(kind: str, flags: list[str]) -> str:
    """Hash of everything the built library depends on (``flags`` includes the CUDA arch list)."""
    spec = EXTENSIONS[kind]
    digest = hashlib.sha256()
    for name in sorted(spec["sources"] + spec["headers"]):
        digest.update(name.encode())
        digest.update((CSRC / name).read_bytes())
    digest.update(torch.__version__.encode())
    digest.update(str(torch.version.cuda).encode())
    digest.update(" ".join(flags).encode())
    digest.update(platform.machine().encode())
    digest.update(sys.version.split()[0].encode())
    return digest.hexdigest()[:16]


# ----------------------------------------------------------------------------- building


def _library_path(folder: Path, kind: str, cpp_extension) -> Path:
    """Where cpp_extension.load leaves the built library (it links it last, so it exists only when complete)."""
    return folder / f"wavegen_{kind}_ops{cpp_extension.LIB_EXT}"


def _someone_else_builds(folder: Path) -> bool:
    """Whether another process holds the build lock that cpp_extension.load takes (an flock on
    ``folder/lock``, released by the kernel when its holder dies)."""
    try:
        fd = os.open(folder / "lock", os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _say(line: str) -> None:
    print(f"wavegen: {line}", file=sys.stderr, flush=True)


def _build(kind: str, verbose: bool) -> BuildResult:
    import time

    from wavegen.kernels.ops import define_ops

    define_ops()  # schemas first: the libraries only register implementations
    start = time.perf_counter()
    _ninja_on_path()
    cpp_extension = _import_cpp_extension()

    spec = EXTENSIONS[kind]
    sources = [str(CSRC / name) for name in spec["sources"]]
    extra = {}
    saved_arch = os.environ.get("TORCH_CUDA_ARCH_LIST")
    if kind == "cpu":
        flags = cpu_flags()
        extra = dict(extra_cflags=flags, extra_ldflags=["-fopenmp"])
    else:
        home = find_cuda_home()
        if home is None:
            return BuildResult(False, error="no CUDA toolkit found (set CUDA_HOME or put nvcc on PATH)")
        # cpp_extension reads CUDA_HOME when it is imported; point it at the toolkit we found.
        cpp_extension.CUDA_HOME = home
        os.environ.setdefault("CUDA_HOME", home)
        arch = cuda_arch_list()
        os.environ["TORCH_CUDA_ARCH_LIST"] = arch
        flags = cuda_flags()
        extra = dict(extra_cflags=["-O3"], extra_cuda_cflags=flags,
                     extra_include_paths=[str(CSRC)])
    key_flags = flags + ([f"arch={os.environ['TORCH_CUDA_ARCH_LIST']}"] if kind == "cuda" else [])
    folder = cache_root() / f"{kind}-{build_key(kind, key_flags)}"
    folder.mkdir(parents=True, exist_ok=True)
    # A first use compiles for seconds: say so, rather than leave a frozen progress bar unexplained.
    label = kind.upper()
    cold = not _library_path(folder, kind, cpp_extension).exists()
    waiting = cold and _someone_else_builds(folder)
    if waiting:
        _say(f"waiting for another process to finish compiling the {label} kernels (in {folder})…")
    elif cold:
        _say(f"compiling the {label} kernels (first use; cached in {folder})…")
    try:
        library = cpp_extension.load(
            name=f"wavegen_{kind}_ops",
            sources=sources,
            build_directory=str(folder),
            is_python_module=False,
            verbose=verbose,
            **extra,
        )
    except Exception as exc:  # compiler missing, compile error, loader error
        message = " ".join(str(exc).split())
        return BuildResult(False, error=message[-2000:], seconds=time.perf_counter() - start, flags=flags)
    finally:
        if kind == "cuda":
            if saved_arch is None:
                os.environ.pop("TORCH_CUDA_ARCH_LIST", None)
            else:
                os.environ["TORCH_CUDA_ARCH_LIST"] = saved_arch
    seconds = time.perf_counter() - start
    if waiting:
        _say(f"the {label} kernels are ready (waited {seconds:.1f} s)")
    elif cold:
        _say(f"compiled the {label} kernels in {seconds:.1f} s")
    return BuildResult(True, library=str(library), seconds=seconds, flags=flags)


def load(kind: str, verbose: bool = False, warn: bool = True) -> BuildResult:
    """Build (once per process, reusing the disk cache) and load the ``cpu`` or ``cuda`` kernels."""
    if kind not in EXTENSIONS:
        raise ValueError(f"unknown kernel library {kind!r}; choose one of {sorted(EXTENSIONS)}")
    with _lock:
        if kind not in _results:
            _results[kind] = _build(kind, verbose)
        result = _results[kind]
    if not result.ok and warn and kind not in _warned:
        _warned.add(kind)
        reason = _first_error_line(result.error or "unknown error")
        print(f"wavegen: warning: could not build the {kind} kernels ({reason}); using the slower "
              f"PyTorch reference path", file=sys.stderr)
    return result


def _first_error_line(message: str) -> str:
    """The compiler's first ``error:`` line, or the start of the message."""
    match = re.search(r"error: ?(.{1,200})", message)
    return (match.group(0) if match else message)[:200].strip()


def status() -> dict[str, BuildResult]:
    """What has been built or tried in this process so far."""
    return dict(_results)
