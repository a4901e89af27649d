"""Moving a run's files into the target directory, all or nothing.

The final move (:func:`move_all_or_nothing`, used by both the staged and the direct write) is all or nothing as far
as a file storage allows: every file of ``directory_path`` that an output name would replace is first renamed to
``.tmp/{run_id}/.replaced/<same relative path>``, then the new files are renamed in (never over a file). If any
step fails, the new files that landed are removed, directories the move created are removed and the set-aside files
are renamed back, then the error is raised again: the run fails and ``directory_path`` holds exactly the files it
held before. ``.tmp/{run_id}`` (with ``.replaced``) is removed in any case, except when undoing the move failed too:
then the run's reason says so and ``.tmp/{run_id}`` is kept, since ``.replaced`` holds old files not yet put back.

Limits: readers of ``directory_path`` during the move may see old files missing or part of the new ones (the move
is a series of renames, not one step; on S3 a rename is a copy and a delete). A process killed in the middle of the
move (SIGKILL, a lost node) cannot undo it: ``directory_path`` may then lack some of its old files and hold some of
the killed run's new ones. The old files are not deleted: they stay in ``.tmp/{killed run_id}/.replaced`` (same
relative paths), and the killed run's other new files in ``.tmp/{killed run_id}``. No later run touches another
run's ``.tmp`` directory: the next run writes and moves its own files as usual, and the kept old files must be put
back (or deleted) by hand.
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Iterable
from typing import Any

from syncmaster_ray.errors import UndoFailed
from syncmaster_ray.outcome import error_with_cause

log = logging.getLogger(__name__)

# Under the run's .tmp dir: the target's files that the run's output replaces, until the move succeeded.
REPLACED_DIR = ".replaced"


def parent_dirs(names: Iterable[str]) -> list[str]:
    """Every directory above the relative names (``a/b/f`` -> ``a/b``, ``a``), deepest first."""
    found: set[str] = set()
    for name in names:
        parent = posixpath.dirname(name)
        while parent:
            found.add(parent)
            parent = posixpath.dirname(parent)
    return sorted(found, key=lambda path: (-path.count("/"), path))


def _rename(connection: Any, source: str, target: str, name: str, done: list[str]) -> None:
    """``rename_file`` (never over a file), recording ``name`` in ``done`` once the file is at ``target``."""
    try:
        connection.rename_file(source, target)
    except Exception:
        # The rename may have happened before the error (a connection lost after the server renamed): look.
        try:
            if not connection.path_exists(source) and connection.path_exists(target):
                done.append(name)
        except Exception:  # the original error tells more
            log.debug("Could not tell whether %s was renamed to %s", source, target, exc_info=True)
        raise
    done.append(name)


def move_all_or_nothing(connection: Any, source_dir: str, target_dir: str, names: Iterable[str]) -> None:
    """Move ``source_dir/<name>`` to ``target_dir/<name>`` for every relative name: all of them, or none.

    ``connection`` is an onETL file connection. Files of ``target_dir`` with an output name are first renamed to
    ``source_dir/.replaced/<name>`` (they are deleted with ``source_dir``); other files of ``target_dir`` are not
    touched. On any error the move is undone and the error raised again; if undoing fails too, :class:`UndoFailed`
    is raised from the error (``source_dir/.replaced`` then holds the old files not put back).
    """
    names = sorted(names)
    aside_dir = posixpath.join(source_dir, REPLACED_DIR)
    new_dirs = [path for path in parent_dirs(names) if not connection.path_exists(posixpath.join(target_dir, path))]
    set_aside: list[str] = []
    landed: list[str] = []
    try:
        for name in names:
            target = posixpath.join(target_dir, name)
            if connection.path_exists(target):
                _rename(connection, target, posixpath.join(aside_dir, name), name, set_aside)
        for name in names:
            _rename(connection, posixpath.join(source_dir, name), posixpath.join(target_dir, name), name, landed)
    except Exception as exc:
        problems = undo_move(connection, aside_dir, target_dir, set_aside=set_aside, landed=landed,
                             new_dirs=new_dirs)
        if problems:
            raise UndoFailed(problems) from exc
        log.warning("Moving %d files into %s failed (%s); undone: %d new files removed, %d old files put back",
                    len(names), target_dir, error_with_cause(exc), len(landed), len(set_aside))
        raise


def undo_move(connection: Any, aside_dir: str, target_dir: str, *, set_aside: list[str], landed: list[str],
              new_dirs: list[str]) -> list[str]:
    """Remove the new files that landed and the directories the move created, put the set-aside files back.

    Goes on past errors; returns what could not be undone (each also logged)."""
    problems: list[str] = []
    for name in reversed(landed):
        path = posixpath.join(target_dir, name)
        try:
            connection.remove_file(path)
        except Exception as exc:
            problems.append(f"new file {path!r} not removed ({error_with_cause(exc)})")
    for directory in new_dirs:
        path = posixpath.join(target_dir, directory)
        try:
            connection.remove_dir(path)
        except Exception as exc:
            problems.append(f"new directory {path!r} not removed ({error_with_cause(exc)})")
    for name in reversed(set_aside):
        source, target = posixpath.join(aside_dir, name), posixpath.join(target_dir, name)
        try:
            connection.rename_file(source, target)
        except Exception as exc:
            problems.append(f"old file {target!r} not put back from {source!r} ({error_with_cause(exc)})")
    for problem in problems:
        log.error("Undoing a failed move into %s: %s", target_dir, problem)
    return problems
