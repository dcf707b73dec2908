"""Keep pydantic out of CLI start-up: coerce plain str, Path, bool and int options without it.

typer (0.29) coerces every option through a pydantic TypeAdapter, so the first option it
processes imports pydantic: about 0.3 s, as long as `import typer, rich, peewee` itself
(README "Performance"). A plain `str`, `Path`, `bool` or in-range `int` needs no pydantic:
this coerces those the way typer's own adapters do, and hands anything else (other types,
choices, files, custom parsers, and every value it would refuse, so error messages stay
typer's) to typer unchanged. If typer's internals
ever move, install() does nothing and typer behaves as it always did.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def install() -> None:
    """Route plain str/Path/bool/int options around pydantic (a no-op if typer changed)."""
    try:
        from typer import _coercion, core
        from typer._param_types import coerce_cli_path
    except ImportError:
        return
    original = getattr(core, "build_runtime_param", None)
    base = getattr(_coercion, "RuntimeParam", None)
    if original is None or base is None or getattr(original, "_skilljar_fast", False):
        return

    @dataclass(frozen=True)
    class PlainRuntimeParam(base):
        descriptor: Any = None

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            if self.annotation is str and isinstance(value, str):
                return value
            if self.annotation is bool and isinstance(value, bool):
                return value
            if self.annotation is Path and isinstance(value, (str, Path)):
                path_type = self.parameter_info.path_type or Path
                if isinstance(path_type, type) and issubclass(path_type, Path) and isinstance(value, str):
                    value = path_type(value)  # what pydantic's Path validation does with a str
                return coerce_cli_path(value, self.parameter_info, path_type=path_type, param=param, ctx=ctx)
            if self.annotation is int and _in_range(value, self.parameter_info):
                return int(value)
            return original(self.descriptor)._coerce_value(value, param=param, ctx=ctx)

    def build_runtime_param(descriptor: Any) -> Any:
        info = descriptor.parameter_info
        plain = descriptor.annotation in (str, Path, bool) or (descriptor.annotation is int and not info.clamp)
        if descriptor.file_annotation is None and getattr(info, "parser", None) is None and plain:
            return PlainRuntimeParam(annotation=descriptor.annotation, parameter_info=info, descriptor=descriptor)
        return original(descriptor)

    build_runtime_param._skilljar_fast = True  # type: ignore[attr-defined]
    core.build_runtime_param = build_runtime_param


def _in_range(value: Any, info: Any) -> bool:
    """Say whether `value` is a plain decimal integer within the option's min/max."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return False
    if isinstance(value, str) and not re.fullmatch(r"-?[0-9]+", value):
        return False
    number = int(value)
    return (info.min is None or number >= info.min) and (info.max is None or number <= info.max)
