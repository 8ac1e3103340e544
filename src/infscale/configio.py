"""Every file the toolkit reads, and every YAML/JSON config it validates, goes through here.

- `read_text` / `read_bytes`: a missing path, a directory, a binary or non-UTF-8 file is one `InputError` naming it.
- `load_yaml` / `load_json`: parse (one line naming the file and line on a syntax error), require the top-level kind,
  and validate into a pydantic model when one is given.
- `Strict`: the one base model of every config (unknown keys are errors).
- `validate_config`: a model from data; a validation error is one line ``SOURCE: field a.b: message``.
- `write_text` / `write_json` / `write_csv` / `save_config`: the output side, parents created, strict JSON.
"""

from __future__ import annotations

import csv
import difflib
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from infscale.errors import InputError
from infscale.jsonsafe import finite, is_finite_number, loads_strict
from infscale.renames import current_name

__all__ = ["Strict", "SafeName", "check_name", "check_number", "read_text", "read_bytes", "load_yaml", "load_json", "validate_config", "validation_message",
           "resolve_recipe", "write_text", "write_json", "write_csv", "save_config"]

M = TypeVar("M", bound=BaseModel)


MAX_NAME_CHARS = 100


def check_name(value: str) -> str:
    """A name used as a path component (a run, a sweep group, a study, a model): not empty, at most 100 characters,
    no path separator, not ``.`` or ``..``, no control characters. The one check, so no name writes outside the
    output directory."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty name")
    if len(value) > MAX_NAME_CHARS:
        raise ValueError(f"must be at most {MAX_NAME_CHARS} characters (got {len(value)})")
    if "/" in value or "\\" in value or value in (".", "..") or any(ord(c) < 32 for c in value):
        raise ValueError(f"{value!r} must be a plain name (no path separators, not '.' or '..', no control "
                         "characters): it names a folder inside the output directory")
    return value


SafeName = Annotated[str, AfterValidator(check_name)]
"""A config field used as a path component (see `check_name`)."""


class Strict(BaseModel):
    """Base of every (frozen) config model: unknown keys are errors, and so are NaN and infinite numbers (no setting of the
    toolkit means anything at infinity: a limit is omitted, not set to ``.inf``)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


def read_bytes(path: str | Path, what: str = "file") -> bytes:
    """The bytes of ``path``; missing, a directory or unreadable -> one `InputError` naming it."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such {what}")
    if p.is_dir():
        raise InputError(f"{p}: is a directory, not a {what}")
    try:
        return p.read_bytes()
    except OSError as exc:
        raise InputError(f"{p}: cannot read ({exc.strerror or exc})") from None


def read_text(path: str | Path, what: str = "file") -> str:
    """UTF-8 text of ``path``; binary (NUL bytes) or non-UTF-8 content is one `InputError` naming it."""
    data = read_bytes(path, what)
    if b"\x00" in data:
        raise InputError(f"{path}: binary content, not a text {what}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start})") from None


def first_error(exc: ValidationError) -> tuple[str, str]:
    """The first error of ``exc``: its field as ``a.b`` (empty for the whole object) and its message. For a field
    that may take several kinds (``str | InlineLaw``), the branch the input was meant for speaks: a "should be a valid
    string" of the other branch is passed over for the same field's real error."""
    errs = exc.errors()
    top = errs[0]["loc"][:1]
    err = next((e for e in errs if e["loc"][:1] == top and not e["type"].endswith("_type")), errs[0])
    return ".".join(str(p) for p in err["loc"]), err["msg"].removeprefix("Value error, ")


def validation_message(source: str, exc: ValidationError) -> str:
    """The first error of ``exc`` as ``SOURCE: field a.b: message``."""
    loc, msg = first_error(exc)
    return f"{source}: field {loc}: {msg}" if loc else f"{source}: {msg}"


def _creatable(path: Path, what: str) -> None:
    """The nearest existing ancestor of ``path`` is a writable directory (so ``path`` can be made)."""
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"{what} {path}: cannot be created, {parent} is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{what} {path}: cannot be created, {parent} is not writable")


OUT_ROOT = Path("infscale-out")
"""Where every command writes when not given ``--out``."""


def default_out(command: str, name: str | None = None) -> Path:
    """The default output directory of ``command``: ``infscale-out/<command>-<name>`` for a resumable job (named by
    its config, so running the same command again resumes it), else ``infscale-out/<command>-<UTC time>`` (each run
    its own directory)."""

    return OUT_ROOT / (f"{command}-{name}" if name else time.strftime(f"{command}-%Y%m%d-%H%M%S", time.gmtime()))


def check_output_dir(path: str | Path, what: str = "--out") -> Path:
    """``path`` can be (or is) a writable directory; checked before any work, so a run never fails at its end."""
    p = Path(path)
    if p.exists():
        if not p.is_dir():
            raise InputError(f"{what} {p}: exists and is not a directory")
        if not os.access(p, os.W_OK | os.X_OK):
            raise InputError(f"{what} {p}: directory is not writable")
    else:
        _creatable(p, what)
    return p


def check_output_file(path: str | Path, what: str = "--out") -> Path:
    """``path`` can be (or is) a writable file."""
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{what} {p}: is a directory, not a file")
    if p.exists():
        if not os.access(p, os.W_OK):
            raise InputError(f"{what} {p}: file is not writable")
    else:
        _creatable(p, what)
    return p


def check_number(flag: str, value: float | None, *, low: float = 0.0, inclusive: bool = False,
                 high: float | None = None) -> None:
    """A numeric flag, checked before any work: finite, above ``low`` (or at it with ``inclusive``), at most
    ``high``; ``None`` (not given) passes. One line naming the flag otherwise."""
    if value is None:
        return
    if not is_finite_number(value):
        raise InputError(f"{flag} {value}: must be a finite number")
    if value < low or (value == low and not inclusive):
        raise InputError(f"{flag} {value:g}: must be {'>=' if inclusive else '>'} {low:g}")
    if high is not None and value > high:
        raise InputError(f"{flag} {value:g}: must be at most {high:g}")


def validate_config(data: Any, model: type[M], source: str) -> M:
    """``model`` validated from ``data``; errors become one `InputError` line naming ``source`` and the field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InputError(validation_message(source, exc)) from None
    except InputError as exc:  # raised by a lookup while building the model
        raise InputError(f"{source}: {exc}") from None


def _check_kind(data: Any, path: str | Path, kind: type | None) -> Any:
    if kind is not None and not isinstance(data, kind):
        name = {dict: "a mapping", list: "a list"}.get(kind, kind.__name__)
        raise InputError(f"{path}: expected {name} at the top level, got {type(data).__name__}")
    return data


def load_yaml(path: str | Path, model: type[M] | None = None, *, what: str = "YAML file",
              kind: type | None = dict) -> Any:
    """Parse a YAML file (empty -> ``{}``) and validate it into ``model`` when given."""
    import yaml  # lazy: yaml

    text = read_text(path, what)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InputError(f"{path}: not valid YAML{where} ({getattr(exc, 'problem', None) or 'syntax error'})") \
            from None
    data = {} if data is None and kind is dict else data
    data = _check_kind(data, path, kind)
    return data if model is None else validate_config(data, model, str(path))


def load_json(path: str | Path, model: type[M] | None = None, *, what: str = "JSON file",
              kind: type | None = dict) -> Any:
    """Parse a JSON file (strict: no NaN/Infinity) and validate it into ``model`` when given."""
    text = read_text(path, what)
    try:
        data = loads_strict(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    except ValueError as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from None
    data = _check_kind(data, path, kind)
    return data if model is None else validate_config(data, model, str(path))


def load_jsonl(path: str | Path, *, what: str = "JSONL file") -> list[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` of each non-blank line of a JSONL input file (strict: no NaN/Infinity, every line
    an object; a bad line, the last one included, is one `InputError` naming ``FILE:LINE``). Empty: an error.
    (Append-only *record* files, whose writer may have been killed mid-line, are read by `infscale.records`.)"""
    out = []
    for lineno, line in enumerate(read_text(path, what).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = loads_strict(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{lineno}: row {len(out) + 1}: invalid JSON ({exc.msg})") from None
        except ValueError as exc:
            raise InputError(f"{path}:{lineno}: row {len(out) + 1}: invalid JSON ({exc})") from None
        if not isinstance(row, dict):
            raise InputError(f"{path}:{lineno}: row {len(out) + 1}: not a JSON object, got {type(row).__name__}")
        out.append((lineno, row))
    if not out:
        raise InputError(f"{path}: empty file: no data rows")
    return out


def resolve_recipe(config: str | Path) -> Path:
    """A YAML path, or the name of a recipe bundled in ``infscale/recipes/`` (``micro_sweep``, ``wu2025_mini``): a
    name resolves to the bundled recipe even when a folder of that name is in the working directory."""
    path = Path(config)
    if path.is_file() or path.suffix in (".yaml", ".yml"):
        return path
    config = current_name(str(config))
    recipes = Path(__file__).resolve().parent / "recipes"
    bundled = recipes / f"{config}.yaml"
    if bundled.is_file() or path.exists():
        return bundled if bundled.is_file() else path

    names = sorted(p.stem for p in recipes.glob("*.yaml"))
    close = difflib.get_close_matches(str(config), names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise InputError(f"{config}: no such file, and not a bundled recipe{hint}; bundled: {', '.join(names)}")


def write_text(path: str | Path, text: str) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return p


def write_json(path: str | Path, data: Any, indent: int = 1) -> str:
    """Strict JSON (numpy values converted, NaN/inf as null)."""
    write_text(path, json.dumps(finite(data), indent=indent, allow_nan=False) + "\n")
    return str(path)


def write_csv(path: str | Path, rows: Sequence[dict[str, Any]]) -> str:
    """Rows as CSV, the first row's keys as the header (an empty file for no rows)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w", newline="", encoding="utf-8") as fh:
        if rows:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(finite(list(rows)))
    return str(p)


def save_config(path: str | Path, data: BaseModel | dict[str, Any]) -> Path:
    """The resolved config of a run, as YAML (what every run directory stores)."""
    import yaml  # lazy: yaml

    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    return write_text(path, yaml.safe_dump(finite(data), sort_keys=False))
