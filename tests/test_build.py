"""The package is built and installed right: the extension imports, OpenBLAS
from scipy-openblas32 is linked and loaded, and a fresh interpreter started
anywhere can import cdask."""

import ctypes
import importlib.metadata
import os
import subprocess
import sys

import pytest

import cdask
import cdask._core


def _mapped_files():
    with open("/proc/self/maps") as f:
        return {line.split(None, 5)[5].strip() for line in f if len(line.split(None, 5)) == 6}


def test_extension_imports():
    assert cdask._core.__name__ == "cdask._core"
    assert os.path.basename(cdask._core.__file__).startswith("_core")
    assert os.path.dirname(cdask._core.__file__) == os.path.dirname(cdask.__file__)


def test_kernels_namespace():
    assert isinstance(cdask.kernels.add, cdask.Kernel)
    assert set(cdask.kernels.__all__) == set(cdask._core.kernels)
    for name in ("add", "sum", "ones", "dot", "spin", "fail"):
        assert getattr(cdask.kernels, name) is cdask._core.kernels[name]


def test_tables_exported():
    """The C tables the Python side reads instead of repeating them: the
    dtypes (core/dtypes.h), the thread cap (core/pool.h) and the kernel
    registry (kernels/registry.h), in their tables' order."""
    import numpy as np

    assert cdask._core.DTYPES == (
        "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
        "float16", "float32", "float64", "complex64", "complex128",
    )
    assert all(np.dtype(name).name == name for name in cdask._core.DTYPES)
    assert cdask._core.MAX_THREADS == 256 and type(cdask._core.MAX_THREADS) is int
    assert list(cdask._core.kernels) == [
        "add", "sub", "mul", "sum", "ones", "zeros", "dot", "gemm", "spin", "fail", "histogram",
    ]
    with pytest.raises(ValueError, match="between 1 and 256"):
        cdask._core.get({"a": 1}, "a", num_workers=cdask._core.MAX_THREADS + 1)


def test_version():
    assert isinstance(cdask.__version__, str)
    assert cdask.__version__ == "0.1.0"
    try:
        installed = importlib.metadata.version("cdask")
    except importlib.metadata.PackageNotFoundError:  # run from a build tree
        pytest.skip("cdask is not installed (running from a build directory)")
    assert installed == cdask.__version__


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="needs /proc")
def test_openblas_loaded_in_process():
    want = os.path.realpath(cdask._openblas.library_path())
    assert os.path.basename(want).startswith("libscipy_openblas")
    loaded = {os.path.realpath(p) for p in _mapped_files() if p.startswith("/")}
    assert want in loaded, "scipy-openblas32's library is not mapped in the process"
    assert cdask._openblas._handle is not None


def test_extension_links_openblas():
    # dlsym on the extension's own handle searches it and the libraries it
    # depends on (DT_NEEDED), not the global scope: finding a BLAS symbol
    # proves _core is linked against libscipy_openblas.
    lib = ctypes.CDLL(cdask._core.__file__)
    assert hasattr(lib, "scipy_cblas_ddot")
    assert "OpenBLAS" in cdask._openblas.config()


def _run(code, cwd, env=None):
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def test_fresh_import_from_another_directory(tmp_path):
    r = _run("import cdask, cdask._core, cdask.config; print(cdask.__file__)", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith(os.path.join("cdask", "__init__.py"))
    # not picked up from the current directory
    assert not r.stdout.strip().startswith(str(tmp_path))


def test_fresh_import_without_numpy_first(tmp_path):
    # cdask must not rely on numpy (which bundles its own OpenBLAS) or
    # scipy_openblas32 having been imported by the user first.
    code = ("import sys; import cdask; "
            "assert 'cdask._core' in sys.modules; "
            "print([l for l in open('/proc/self/maps') if 'scipy_openblas32' in l][:1])")
    r = _run(code, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "libscipy_openblas" in r.stdout


def test_interpreter_exits_cleanly(tmp_path):
    # the atexit hook stops the worker pool; exit must not hang or crash,
    # also when a run has started worker threads
    code = ("import cdask; "
            "g = {'b': (cdask.kernels.sum, (cdask.kernels.ones, 4))}; "
            "assert float(cdask.get(g, 'b', num_workers=2)) == 4.0; print('ok')")
    r = _run(code, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


def test_blas_kernel_runs():
    import numpy as np
    a = np.arange(5, dtype=np.float64)
    b = np.ones(5, dtype=np.float64)
    assert float(cdask.kernels.dot(a, b)) == 10.0
