"""Build script of cdask: one C extension, ``cdask._core``, made of every .c file
under src/ (src/core, src/kernels, src/io, src/python; see src/README.md).

Everything about the package itself (name, version, dependencies) lives in
pyproject.toml; this file only describes the extension, because its include
directories and link line come from packages that are known at build time
(NumPy's headers, scipy-openblas32's headers and library).

Build switches, read from the environment at build time:

    CDASK_SANITIZE=address,undefined   AddressSanitizer + UBSan (-O1 -g)
    CDASK_SANITIZE=thread              ThreadSanitizer (-O1 -g)
    CDASK_DEBUG=1                      -O0 -g, assertions on

Release builds (the default) use -O3 and define NDEBUG.
"""

import glob
import os
import sys

from setuptools import setup, find_packages, Extension
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))


def _env_flag(name):
    return os.environ.get(name, "").strip().lower() not in ("", "0", "no", "false", "off")


def _sanitizers():
    raw = os.environ.get("CDASK_SANITIZE", "").strip()
    if not raw:
        return []
    names = [s.strip() for s in raw.replace(";", ",").split(",") if s.strip()]
    allowed = {"address", "undefined", "thread", "leak"}
    bad = [n for n in names if n not in allowed]
    if bad:
        sys.exit("CDASK_SANITIZE: unknown sanitizer(s) %s (use address,undefined or thread)" % ", ".join(bad))
    if "thread" in names and ("address" in names or "leak" in names):
        sys.exit("CDASK_SANITIZE: thread cannot be combined with address/leak")
    return names


def _under_src(pattern):
    """Files matching pattern anywhere below src/, relative to setup.py, sorted."""
    return sorted(os.path.relpath(p, HERE)
                  for p in glob.glob(os.path.join(HERE, "src", "**", pattern), recursive=True))


def _extension():
    import numpy
    import scipy_openblas32

    # setuptools wants source paths relative to setup.py's directory.  Files
    # include each other by their path below src/ ("core/chunk.h"), so src/
    # is the one include directory of cdask's own.
    sources = _under_src("*.c")
    if not sources:
        sys.exit("cdask: no C sources found in src/")

    blas_inc = scipy_openblas32.get_include_dir()
    blas_lib = scipy_openblas32.get_lib_dir()
    blas_name = scipy_openblas32.get_library()          # "scipy_openblas"

    compile_args = ["-std=gnu11", "-pthread", "-Wall", "-Wextra", "-fno-strict-aliasing"]
    link_args = ["-pthread"]
    macros = [("BLAS_SYMBOL_PREFIX", "scipy_")]

    sans = _sanitizers()
    debug = _env_flag("CDASK_DEBUG")
    if sans:
        flag = "-fsanitize=" + ",".join(sans)
        compile_args += [flag, "-fno-omit-frame-pointer", "-g", "-O0" if debug else "-O1"]
        if "undefined" in sans:
            compile_args.append("-fno-sanitize-recover=undefined")
        link_args += [flag]
        # Assertions stay on in sanitizer builds: they are for finding bugs.
        compile_args.append("-UNDEBUG")
    elif debug:
        compile_args += ["-O0", "-g", "-UNDEBUG"]
    else:
        compile_args += ["-O3"]
        macros.append(("NDEBUG", "1"))
    if debug:
        macros.append(("CD_DEBUG", "1"))

    return Extension(
        "cdask._core",
        sources=sources,
        depends=_under_src("*.h"),
        include_dirs=["src", numpy.get_include(), blas_inc],
        library_dirs=[blas_lib],
        libraries=[blas_name],
        # Only a fallback: with build isolation this directory is temporary.
        # cdask/__init__.py pre-loads the library from the installed
        # scipy_openblas32 before importing _core.
        runtime_library_dirs=[blas_lib],
        define_macros=macros,
        extra_compile_args=compile_args,
        extra_link_args=link_args,
        language="c",
    )


class BuildExt(build_ext):
    """build_ext that compiles the sources in parallel (one job per core) and rebuilds
    everything when the build switches change: setuptools only compares file
    times, so a release build would otherwise be reused for a sanitizer
    build made in the same tree (and the other way round)."""

    def build_extension(self, ext):
        # setuptools compiles the sources of one extension one after the
        # other; compile them one per core instead.
        compiler = self.compiler
        serial_compile = compiler.compile
        jobs = max(1, os.cpu_count() or 1)

        def compile(sources, *args, **kwargs):
            if jobs == 1 or len(sources) < 2:
                return serial_compile(sources, *args, **kwargs)
            from concurrent.futures import ThreadPoolExecutor
            with ThreadPoolExecutor(jobs) as pool:
                parts = list(pool.map(lambda src: serial_compile([src], *args, **kwargs), sources))
            return [obj for part in parts for obj in part]

        compiler.compile = compile
        try:
            super().build_extension(ext)
        finally:
            compiler.compile = serial_compile

    def run(self):
        import numpy
        import scipy_openblas32
        ext = self.extensions[0]
        signature = repr((ext.extra_compile_args, ext.extra_link_args, ext.define_macros,
                          ext.include_dirs, ext.library_dirs, numpy.__version__,
                          scipy_openblas32.__version__, sys.version))
        stamp = os.path.join(self.build_temp, "cdask-build-flags.txt")
        try:
            with open(stamp) as f:
                same = f.read() == signature
        except OSError:
            same = False
        if not same:
            self.force = True
        super().run()
        os.makedirs(self.build_temp, exist_ok=True)
        with open(stamp, "w") as f:
            f.write(signature)


setup(
    package_dir={"": "python"},
    packages=find_packages(where="python"),
    ext_modules=[_extension()],
    cmdclass={"build_ext": BuildExt},
)
