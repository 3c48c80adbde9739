"""What every command shares: its ``--config`` flag, flag parsing and one-line errors.

    _CONFIG = common.config_flag("config", "Experiment config file ...")
    def main(argv):
        common.run_command("rnnlab launch", lambda: launch(_CONFIG.value, workdir))
    common.run_app("rnnlab launch", main, define_flags=lambda: None)

A config file is read by :func:`rnnlab.training.config_files.load_config`, so
it works from any working directory. An error the user can fix (a bad flag, a
config file that does not load, a config or data error raised while the run is
set up: :class:`rnnlab.training.checks.SetupPhase`) prints one line,
``<command>: <what is wrong>``, and exits with status 1; ``--verbosity=1``
shows the traceback instead.
"""

from __future__ import annotations

import sys
from typing import Any, Callable, NoReturn, Sequence

from absl import app, flags, logging
from ml_collections.config_flags import config_flags

from rnnlab.training.checks import SETUP_ERRORS, SetupPhase, error_line, is_setup_error
from rnnlab.training.config_files import load_config, split_spec


class _ConfigFileParser(config_flags.ConfigFileFlagParser):
    """Reads ``path[:variants]`` with :func:`load_config` (any working directory); errors become flag errors."""

    def parse(self, spec: str) -> Any:
        path, arg = split_spec(spec)
        try:
            config = load_config(path, arg)
        except SETUP_ERRORS as e:
            raise ValueError(error_line(e)) from e  # absl reports it as "flag --config=...: <message>"
        if self._lock_config:
            config.lock()
        return config


def config_flag(name: str, help_string: str, flag_values: flags.FlagValues = flags.FLAGS) -> flags.FlagHolder:
    """Defines ``--<name>=path[:variants]`` with ``--<name>.section.field=value`` overrides, as
    ``ml_collections.config_flags.DEFINE_config_file`` does, but loading the file from any working
    directory (:func:`rnnlab.training.config_files.load_module`); in ``flag_values`` (absl's global flags by
    default)."""
    flag = config_flags._ConfigFlag(  # noqa: SLF001 (the one way to give DEFINE_config_file's flag a parser)
        parser=_ConfigFileParser(name=name, lock_config=True), serializer=flags.ArgumentSerializer(),
        name=name, default=None, help_string=help_string, flag_values=flag_values)
    return flags.DEFINE_flag(flag, flag_values)


def named_runs(items: Sequence[str], flag: str = "run") -> list[tuple[str, str]]:
    """The values of a repeated ``--FLAG=NAME=WORKDIR`` flag as ``[(name, workdir)]``, in order (a name holds
    no ``=``; a workdir may). A study's command names its runs this way to group seeds under one name.

    Raises:
      absl.app.UsageError: an item without a name or a workdir.
    """
    pairs = []
    for item in items:
        name, sep, workdir = item.partition("=")
        if not sep or not name or not workdir:
            raise app.UsageError(f"--{flag} takes NAME=WORKDIR, got {item!r}")
        pairs.append((name, workdir))
    return pairs


def fail(command: str, error: BaseException | str) -> NoReturn:
    """Exits with ``<command>: <one line>`` (``sys.exit`` writes it to stderr; status 1)."""
    message = error if isinstance(error, str) else error_line(error)
    sys.exit(f"{command}: {message}")


def parse_flags_or_exit(command: str) -> Callable[[Sequence[str]], list[str]]:
    """A ``flags_parser`` for ``absl.app.run``: a bad flag or config override is one line and exit status 1."""

    def parse(argv: Sequence[str]) -> list[str]:
        try:
            return flags.FLAGS(argv)
        except flags.Error as e:
            fail(command, e)
        except (AttributeError, KeyError, TypeError, ValueError) as e:  # ml_collections' override errors
            fail(command, _override_error(argv, e))

    return parse


def run_app(command: str, main: Callable[[Sequence[str]], None], define_flags: Callable[[], None],
            argv: Sequence[str] | None = None) -> None:
    """Defines a command's flags and runs its ``main`` under absl (``argv`` defaults to ``sys.argv``); a bad
    flag is one line ``<command>: ...`` and exit status 1 (:func:`parse_flags_or_exit`). ``--help`` prints
    the command module's docstring and its own flags."""
    define_flags()
    argv = list(sys.argv if argv is None else argv)
    if any(a in ("-h", "-?", "--help", "--helpshort") for a in argv[1:]):
        module = sys.modules[main.__module__]
        print(f"{(module.__doc__ or command).strip()}\n\nflags:\n{flags.FLAGS.module_help(module)}")
        sys.exit(0)
    app.run(main, argv=argv, flags_parser=parse_flags_or_exit(command))


def _override_error(argv: Sequence[str], error: Exception) -> str:
    """One line for an error of a ``--config.<field>=value`` override, naming the flag when it can be found."""
    message = error_line(error)
    key = message.split()[0].strip("'\"") if message else ""
    overrides = [a.split("=", 1)[0] for a in argv if a.startswith("--") and "." in a.split("=", 1)[0]]
    named = [o for o in overrides if key and key in o.lstrip("-").split(".")[1:]]
    if isinstance(error, (KeyError, AttributeError)) and named:
        hint = message[len(message.split()[0]):].strip()
        return f"{named[0]}: no such config field {key!r}" + (f"; {hint}" if hint else "")
    return f"{named[0] if named else '--config.<field>'}: {message}"


def run_command(command: str, work: Callable[[], Any], all_setup: bool = False) -> Any:
    """``work()``; a setup error (:func:`is_setup_error`) is one line on stderr and exit status 1.

    Args:
      command: the name the line starts with (``rnnlab sweep``).
      work: the command's one call into the layer that does the work.
      all_setup: every :data:`SETUP_ERRORS` exception escaping ``work`` is the
        user's (a sweep: its runs' own failures are caught and logged inside).

    With ``--verbosity=1`` (or higher) the error is raised with its traceback.
    """
    try:
        if all_setup:
            with SetupPhase():
                return work()
        return work()
    except Exception as e:
        if not is_setup_error(e) or logging.get_verbosity() >= 1:
            raise
        fail(command, e)
