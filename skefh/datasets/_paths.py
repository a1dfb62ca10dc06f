"""Where to look for dataset files on disk.

Every loader in :mod:`skefh.datasets` searches the same ordered list of
places, so the rules live here once:

1. ``data_home`` passed by the caller: the directory itself, then the
   dataset-specific sub-layouts below it (e.g. ``FashionMNIST/raw``);
2. the directory named by the ``SKEFH_DATA`` environment variable: the
   directory itself, then the same sub-layouts;
3. ``~/.skefh/data`` and ``~/scikit_learn_data``: the sub-layouts only,
   because these are shared roots that hold several datasets side by side
   (MNIST and Fashion-MNIST even use identical file names);
4. system directories where Linux distributions install datasets.

Nothing here downloads anything.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

ENVIRONMENT_VARIABLE = "SKEFH_DATA"

# Read at call time (not bound as default arguments) so tests and users can
# override it with ``monkeypatch.setattr`` or plain assignment.
SYSTEM_DATA_DIRECTORIES: dict[str, tuple[str, ...]] = {
    # Debian/Ubuntu package ``dataset-fashion-mnist``.
    "fashion-mnist": ("/usr/share/datasets/fashion-mnist",),
    "mnist": ("/usr/share/datasets/mnist",),
}

_HOME_ROOTS = (".skefh/data", "scikit_learn_data")


def system_directories(dataset: str) -> tuple[Path, ...]:
    """Return the system directories registered for ``dataset``."""
    return tuple(Path(p) for p in SYSTEM_DATA_DIRECTORIES.get(dataset, ()))


def _expand(path: str | os.PathLike) -> Path:
    return Path(path).expanduser()


def candidate_directories(
    subdirectories: Sequence[str],
    data_home: str | os.PathLike | None = None,
    system_dirs: Iterable[str | os.PathLike] = (),
) -> list[Path]:
    """List the directories to search, in order, without duplicates.

    Parameters
    ----------
    subdirectories : sequence of str
        Dataset-specific sub-layouts tried below each root, e.g.
        ``("FashionMNIST/raw", "fashion-mnist")``.
    data_home : path-like, optional
        Directory given by the caller; searched first.
    system_dirs : iterable of path-like
        Directories searched last, as they are (no sub-layouts).

    Returns
    -------
    list of pathlib.Path
    """
    candidates: list[Path] = []

    def add_root(root: Path, include_root: bool) -> None:
        if include_root:
            candidates.append(root)
        candidates.extend(root / sub for sub in subdirectories)

    if data_home is not None:
        add_root(_expand(data_home), include_root=True)
    env_root = os.environ.get(ENVIRONMENT_VARIABLE, "").strip()
    if env_root:
        add_root(_expand(env_root), include_root=True)
    home = Path.home()
    for relative in _HOME_ROOTS:
        add_root(home / relative, include_root=False)
    candidates.extend(_expand(p) for p in system_dirs)

    unique: list[Path] = []
    seen: set[Path] = set()
    for path in candidates:
        if path not in seen:
            seen.add(path)
            unique.append(path)
    return unique


def resolve_file(directory: Path, name: str) -> Path | None:
    """Return ``directory/name`` or ``directory/name.gz``, whichever exists."""
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def has_files(directory: Path, names: Iterable[str]) -> bool:
    """Whether every file in ``names`` exists in ``directory`` (raw or ``.gz``)."""
    return directory.is_dir() and all(resolve_file(directory, n) is not None for n in names)


def find_data_directory(
    required: Sequence[str] | Callable[[Path], bool],
    subdirectories: Sequence[str] = (),
    data_home: str | os.PathLike | None = None,
    system_dirs: Iterable[str | os.PathLike] = (),
) -> tuple[Path | None, list[Path]]:
    """Find the first candidate directory that holds a dataset.

    Parameters
    ----------
    required : sequence of str or callable
        Either file names that must all be present (each may also exist with
        a ``.gz`` suffix), or a predicate ``f(directory) -> bool``.
    subdirectories : sequence of str
        Sub-layouts tried below each root, see :func:`candidate_directories`.
    data_home : path-like, optional
        Directory given by the caller; searched first.
    system_dirs : iterable of path-like
        Directories searched last.

    Returns
    -------
    directory : pathlib.Path or None
        The first match, or None when no candidate matches.
    searched : list of pathlib.Path
        Every directory examined, in order, including the match.
    """
    if callable(required):
        matches = required
    else:
        names = tuple(required)

        def matches(directory: Path) -> bool:
            return has_files(directory, names)

    searched: list[Path] = []
    for directory in candidate_directories(subdirectories, data_home, system_dirs):
        searched.append(directory)
        if matches(directory):
            return directory, searched
    return None, searched


def format_searched(searched: Iterable[Path]) -> str:
    """Format searched directories one per line, flagging missing ones."""
    lines = []
    for path in searched:
        note = "" if path.is_dir() else "  (does not exist)"
        lines.append(f"  {path}{note}")
    return "\n".join(lines) if lines else "  (no directories)"
