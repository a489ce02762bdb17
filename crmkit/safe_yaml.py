"""The one way crmkit reads YAML (rule files and crmkit.yaml).

``yaml.safe_load`` builds no Python objects, but it still expands aliases: nine
levels of ``&a [*b, *b, ...]`` in a description took 75 s and 2.8 GB. This loader:

- reads regular files only (a FIFO or a device would block or never end), at most
  ``MAX_BYTES``, as UTF-8 (a BOM is fine);
- refuses aliases (``*name``) outright: nothing in a rule file or a config needs
  one, and without them the loaded data is never larger than the file;
- refuses nesting deeper than ``MAX_DEPTH`` levels, and duplicate keys;
- records the 1-based line of every mapping, sequence and mapping value
  (``LineDict.line``, ``LineDict.lines[key]``, ``LineList.line``) for messages.

Every problem is raised as the caller's error class (``RulesError``,
``ConfigError``) with the file, the line and a hint.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import yaml

from crmkit.errors import CrmkitError

MAX_BYTES = 1024 * 1024  # rule files and crmkit.yaml are a few KB; 1 MiB is plenty
MAX_DEPTH = 50  # nested mappings and lists (the recursive composer would fail near 300)


class LineDict(dict):
    """A mapping that remembers where it and each of its values started."""

    line: int | None = None
    lines: dict

    @classmethod
    def empty(cls) -> LineDict:
        out = cls()
        out.line, out.lines = None, {}
        return out


class LineList(list):
    line: int | None = None


class YamlProblem(Exception):
    def __init__(self, message: str, line: int | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message, self.line, self.hint = message, line, hint


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses aliases and deep nesting, records line numbers and
    rejects duplicate keys."""

    depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise YamlProblem(
                f"YAML alias *{event.anchor} is not allowed",
                event.start_mark.line + 1,
                "write the value out in full instead of referring to an &anchor",
            )
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise YamlProblem(
                f"YAML nests more than {MAX_DEPTH} levels deep",
                self.peek_event().start_mark.line + 1,
                "a rule file or config needs a few levels",
            )
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    out = LineDict.empty()
    out.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in out:
            raise YamlProblem(
                f'duplicate key "{key}"',
                key_node.start_mark.line + 1,
                "each key may appear once in a mapping; remove or rename one",
            )
        out[key] = loader.construct_object(value_node, deep=True)
        out.lines[key] = value_node.start_mark.line + 1
    return out


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    out = LineList(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_seq)


def read_text(path: Path, *, what: str, error: type[CrmkitError], not_found_hint: str) -> str:
    """A regular file's text (UTF-8, BOM removed), at most MAX_BYTES; never blocks."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise error(f"{what} not found", file=str(path), hint=not_found_hint) from None
    except OSError as exc:
        raise error(f"cannot read {what}: {exc.strerror}", file=str(path)) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise error(
                f"{what} is not a regular file (a folder, FIFO or device)",
                file=str(path),
                hint=not_found_hint,
            )
        data = b""
        while len(data) <= MAX_BYTES and (chunk := os.read(fd, MAX_BYTES + 1 - len(data))):
            data += chunk
    finally:
        os.close(fd)
    if len(data) > MAX_BYTES:
        raise error(
            f"{what} is larger than {MAX_BYTES // 1024} KiB",
            file=str(path),
            hint=f"a {what} is a few KB of YAML; check that this is the right file",
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise error(f"{what} is not UTF-8 text", file=str(path), hint="save it as UTF-8") from None


def load_yaml(
    path: Path,
    *,
    what: str,
    error: type[CrmkitError],
    not_found_hint: str,
    syntax_hint: str,
) -> object:
    """Parse one YAML file as described above. ``None`` for an empty file."""
    loader = _Loader(read_text(path, what=what, error=error, not_found_hint=not_found_hint))
    try:
        return loader.get_single_data()
    except YamlProblem as exc:
        raise error(exc.message, file=str(path), line=exc.line, hint=exc.hint) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(
            f"YAML syntax error: {problem}",
            file=str(path),
            line=(mark.line + 1) if mark else None,
            hint=syntax_hint,
        ) from None
    except RecursionError:
        raise error(
            "YAML nests too deeply", file=str(path), hint="a few levels of nesting are enough"
        ) from None
    finally:
        loader.dispose()
