"""The root `scim` group: command groups loaded lazily (Click's "lazy group"), one error translator.

A command group's module is imported only when that group runs (or help lists it), so
`scim token list` never imports the server, Flask or another group's domain modules.

Every command the group holds gets plain help (no rich boxes: flags read as flags) and
plain values: a `str`, `int` or `Path` parameter is coerced here, as typer's own adapters
would, instead of through pydantic, whose import would cost more than the whole command.
This is done by subclassing typer's public TyperOption/TyperArgument and overriding their
public `get_runtime_param`; anything else (choices, files, custom parsers) stays typer's.
"""

from __future__ import annotations

import difflib
import importlib
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any

import click
import peewee
import typer
import typer.main
from typer.core import TyperArgument, TyperGroup, TyperOption

from skilljar_scim.base.errors import ExitCode, SkilljarError

log = logging.getLogger("skilljar_scim.cli")
MISSING_COMMAND = "Missing command."  # Click's message for a group given options but no command
SIGPIPE_EXIT = 141  # 128 + SIGPIPE: what a shell reports for `yes | head -1`
_INTEGER = re.compile(r"[+-]?[0-9]+")
_TRUE, _FALSE = ("1", "true", "t", "yes", "y", "on"), ("0", "false", "f", "no", "n", "off")


class LazyGroup(TyperGroup):
    """A group whose commands are imported on first use: `lazy` maps a name to its module.

    A module holds a Typer `app` (a command group, built with typer's public
    `typer.main.get_group`, even when it has one command) or a Typer `command` holding one
    command (`typer.main.get_command`).
    """

    lazy: dict[str, str] = {}
    summaries: dict[str, str] = {}  # name -> the first line of its help, so `--help` imports none

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        plain(self)

    def list_commands(self, ctx: typer.Context) -> list[str]:
        """List the eager commands, then the lazy groups, in declaration order."""
        eager = super().list_commands(ctx)
        return eager + [name for name in self.lazy if name not in eager]

    def get_command(self, ctx: typer.Context, name: str):
        """Return a subcommand, importing its module the first time it is asked for."""
        if name in self.lazy and name not in self.commands:
            self.add_command(plain(_load(self.lazy[name], name), ctx), name)
        return super().get_command(ctx, name)

    def format_commands(self, ctx: typer.Context, formatter) -> None:
        """List the commands with their one-line help as Click would, loading none that has a summary."""
        commands = [(name, self._listed(ctx, name)) for name in self.list_commands(ctx)]
        commands = [(name, command) for name, command in commands if command is not None and not command.hidden]
        if commands:
            limit = formatter.width - 6 - max(len(name) for name, _ in commands)  # Click's own layout
            with formatter.section("Commands"):
                formatter.write_dl([(name, command.get_short_help_str(limit)) for name, command in commands])

    def _listed(self, ctx: typer.Context, name: str):
        """Return the command, or a stand-in carrying its declared summary while it is not loaded."""
        if name in self.commands or name not in self.summaries:
            return self.get_command(ctx, name)
        return click.Command(name, help=self.summaries[name])

    def get_help_option(self, ctx: typer.Context):
        """Return the -h/--help option, with plain values like every other option."""
        return _plain_param(super().get_help_option(ctx))

    def resolve_command(self, ctx: typer.Context, args: list[str]):
        """Refuse an unknown command in one line, suggesting the closest names."""
        name = args[0]
        if not name.startswith("-") and self.get_command(ctx, name) is None:
            close = difflib.get_close_matches(name, self.list_commands(ctx))
            hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            ctx.fail(f"No such command {name!r}.{hint}")
        return super().resolve_command(ctx, args)


def _load(module_name: str, name: str) -> Any:
    """Import a command module; return its `app` as a group, or its one-command `command`."""
    module = importlib.import_module(module_name)
    built = typer.main.get_group(module.app) if hasattr(module, "app") else typer.main.get_command(module.command)
    built.name = name
    return built


class RootGroup(LazyGroup):
    """The `scim` command: the one place where every error becomes one line and an exit code."""

    def main(self, args: Any = None, prog_name: str | None = None, **extra: Any) -> Any:
        """Run the CLI; exit with the command's code, or print `Error: <one line>` and its code."""
        extra.pop("standalone_mode", None)
        try:
            code = super().main(args=args, prog_name="scim", standalone_mode=False, **extra)
        except Exception as exc:  # noqa: BLE001 - the translator: no traceback ever reaches a user
            code = report(exc)
        sys.exit(code if isinstance(code, int) else ExitCode.OK)

    def invoke(self, ctx: typer.Context) -> Any:
        """Run the command; a reader that went away (`| head -1`) ends it quietly."""
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            _silence_stdout()
            return SIGPIPE_EXIT


def report(exc: Exception) -> int:
    """Print what went wrong on stderr (help, or `Error: <one line>`); return the exit code."""
    if type(exc).__name__ == "NoArgsIsHelpError":  # a group alone: its help is the answer
        typer.echo(exc.format_message(), err=True)
        return ExitCode.USAGE
    context = getattr(exc, "ctx", None)
    if context is not None and isinstance(exc, typer.TyperException) and exc.format_message() == MISSING_COMMAND:
        typer.echo(context.get_help(), err=True)  # options but no command (`scim -c FILE`): the same
        return ExitCode.USAGE
    message, code = describe(exc)
    typer.echo("Error: " + " ".join(str(message).split()), err=True)
    return int(code)


def describe(exc: Exception) -> tuple[str, int]:
    """Return the one-line message and exit code of an error (README "Exit codes")."""
    if isinstance(exc, SkilljarError):
        return exc.detail, exc.exit_code
    if isinstance(exc, typer.Abort):
        return "aborted: nothing was changed", ExitCode.ABORTED
    if isinstance(exc, typer.TyperException):  # a usage error found while parsing
        return _usage(exc)
    if isinstance(exc, peewee.DatabaseError):
        return f"database error: {exc}", ExitCode.DATABASE
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename or 'I/O'}: {exc.strerror}", ExitCode.ERROR
    log.debug("unexpected error", exc_info=True)
    return f"unexpected {type(exc).__name__}: {exc}", ExitCode.ERROR


def _usage(exc: Exception) -> tuple[str, int]:
    """Turn a usage error (bad flag or argument) into one line that names the help to read."""
    context = getattr(exc, "ctx", None)
    hint = f" (see `{context.command_path} --help`)" if context is not None else ""
    return exc.format_message() + hint, getattr(exc, "exit_code", ExitCode.USAGE)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # not a real file (a test runner's buffer): nothing to flush
        pass
    finally:
        os.close(devnull)


# --- plain help and plain values ---------------------------------------------------------


def plain(command: Any, ctx: typer.Context | None = None) -> Any:
    """Give a command and its subcommands plain help and pydantic-free plain values; return it.

    With `ctx` (whose help option names the commands inherit), their help options too.
    """
    command.rich_markup_mode = None
    for param in command.params:
        _plain_param(param)
    if ctx is not None:
        _plain_param(command.get_help_option(ctx))
    for sub in getattr(command, "commands", {}).values():
        plain(sub, ctx)
    return command


def _plain_param(param: Any) -> Any:
    """Make one of typer's parameters a Plain one (same object, same state); return it."""
    if type(param) is TyperOption:
        param.__class__ = PlainOption
    elif type(param) is TyperArgument:
        param.__class__ = PlainArgument
    return param


def _plain_runtime_param(self: Any) -> Any:
    """Coerce a single str, bool, int or unconstrained Path value here; leave anything else to typer."""
    kind = _plain_kind(self)
    return PlainCoercion(kind, self.type_descriptor.parameter_info) if kind else super(type(self), self).get_runtime_param()


class PlainOption(TyperOption):
    """A typer option whose plain values skip pydantic (it adds no state, only this method)."""

    get_runtime_param = _plain_runtime_param


class PlainArgument(TyperArgument):
    """A typer argument whose plain values skip pydantic (it adds no state, only this method)."""

    get_runtime_param = _plain_runtime_param


def _plain_kind(param: Any) -> type | None:
    """Return str, bool, int or Path when the parameter needs no more than that type's conversion."""
    descriptor = param.type_descriptor
    info = descriptor.parameter_info
    if descriptor.file_annotation is not None or info.parser is not None or param.multiple or param.nargs != 1:
        return None
    kind = descriptor.annotation
    if kind in (str, bool) or (kind is int and not info.clamp):
        return kind
    unconstrained = not (info.exists or info.writable or info.resolve_path or info.allow_dash)
    if kind is Path and unconstrained and info.file_okay and info.dir_okay and info.path_type is None:
        return Path
    return None


class PlainCoercion:
    """The runtime coercion of one plain parameter (the interface typer calls: `coerce`)."""

    def __init__(self, kind: type, info: Any) -> None:
        self.kind, self.info = kind, info

    def coerce(self, value: Any, param: Any, ctx: typer.Context) -> Any:
        """Return `value` as this parameter's type, or raise typer.BadParameter."""
        if value is None or (self.kind not in (int, bool) and isinstance(value, self.kind)):
            return value
        if self.kind is bool:
            return self._flag(value, param, ctx)
        if self.kind is str:
            return str(value)
        if self.kind is Path:
            return Path(value)
        return self._integer(value, param, ctx)

    def _flag(self, value: Any, param: Any, ctx: typer.Context) -> bool:
        if isinstance(value, bool):
            return value
        word = str(value).strip().lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
        raise typer.BadParameter(f"{value!r} is not a yes/no value.", ctx=ctx, param=param)

    def _integer(self, value: Any, param: Any, ctx: typer.Context) -> int:
        if isinstance(value, bool) or not (isinstance(value, int) or _INTEGER.fullmatch(str(value))):
            raise typer.BadParameter(f"{value!r} is not a whole number.", ctx=ctx, param=param)
        number, low, high = int(value), self.info.min, self.info.max
        if (low is not None and number < low) or (high is not None and number > high):
            bounds = f"{low if low is not None else ''}<=x{'<=' + str(high) if high is not None else ''}"
            raise typer.BadParameter(f"{number} is not in the range {bounds}.", ctx=ctx, param=param)
        return number
