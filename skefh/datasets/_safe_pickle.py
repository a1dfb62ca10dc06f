"""A restricted unpickler for the CIFAR-10 python batches.

Unpickling can run arbitrary code: a pickle names callables (module +
attribute) that the loader calls with pickled arguments. The CIFAR batches
only need plain containers and numpy arrays, so every other global is
refused. This narrows the attack surface; it is not a security sandbox.
"""

from __future__ import annotations

import codecs
import importlib
import io
import pickle

import numpy as np

# numpy >= 2 moved ``numpy.core`` to ``numpy._core`` and warns on access to the
# old name; pickles written by either version must load under both.
_NUMPY_CORE_ALIASES = ("numpy._core", "numpy.core")


def _numpy_core_attribute(submodule: str, name: str):
    for package in _NUMPY_CORE_ALIASES:
        try:
            module = importlib.import_module(f"{package}.{submodule}")
        except ImportError:
            continue
        if hasattr(module, name):
            return getattr(module, name)
    raise pickle.UnpicklingError(f"numpy has no {submodule}.{name}")


def _allowed_globals():
    allowed = {
        ("numpy", "ndarray"): lambda: np.ndarray,
        ("numpy", "dtype"): lambda: np.dtype,
        # Python 3 pickles of bytes at protocol <= 2 go through codecs.encode.
        ("_codecs", "encode"): lambda: codecs.encode,
    }
    for package in _NUMPY_CORE_ALIASES:
        allowed[(f"{package}.multiarray", "_reconstruct")] = lambda: _numpy_core_attribute(
            "multiarray", "_reconstruct"
        )
        allowed[(f"{package}.multiarray", "scalar")] = lambda: _numpy_core_attribute(
            "multiarray", "scalar"
        )
        # Protocol 5 pickles of contiguous arrays use numeric._frombuffer.
        allowed[(f"{package}.numeric", "_frombuffer")] = lambda: _numpy_core_attribute(
            "numeric", "_frombuffer"
        )
    return allowed


_ALLOWED = _allowed_globals()


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that only resolves the globals a numpy array pickle needs."""

    def find_class(self, module: str, name: str):
        resolve = _ALLOWED.get((module, name))
        if resolve is None:
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name}: only numpy arrays and plain "
                "containers are allowed in a CIFAR-10 batch"
            )
        return resolve()


def restricted_load(file, name: str):
    """Unpickle ``file`` with :class:`RestrictedUnpickler`.

    ``encoding="latin1"`` is required for the original CIFAR-10 batches,
    which were written by Python 2: it lets numpy rebuild array buffers from
    Python 2 ``str`` objects. Any failure is re-raised as ValueError naming
    ``name``.
    """
    data = file.read() if hasattr(file, "read") else file
    try:
        return RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
    except pickle.UnpicklingError as exc:
        raise ValueError(f"{name}: unsafe or invalid pickle: {exc}") from exc
    except (
        EOFError, AttributeError, ImportError, IndexError, TypeError, KeyError, ValueError
    ) as exc:
        raise ValueError(f"{name}: corrupt pickle ({type(exc).__name__}: {exc})") from exc
