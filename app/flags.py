"""Command-line flags derived from the settings tree, so help and defaults cannot drift.

Each flag is made from one field of `inferloop.settings.Settings` (its type, its
description, its default, its environment variable); `settings_from_args` turns
the flags a user gave back into the settings, on top of the environment.
"""

from __future__ import annotations

import argparse
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from inferloop.settings import Settings, environment_name

_DEST_PREFIX = "setting:"


def setting_fields(path: str) -> Iterator[tuple[str, FieldInfo]]:
    """(dotted path, field) of a field (`database_url`) or of every field of a section
    (`analyzer.*`)."""
    model: type[BaseModel] = Settings
    *sections, last = path.split(".")
    for section in sections:
        model = _section_model(model.model_fields[section])
    prefix = "".join(f"{section}." for section in sections)
    if last == "*":
        for name, field in model.model_fields.items():
            yield prefix + name, field
    else:
        yield prefix + last, model.model_fields[last]


def add_setting_flags(
    parser: argparse.ArgumentParser, *paths: str, aliases: dict[str, str] | None = None
) -> None:
    """Add a `--flag` for each settings field named by `paths` (see `setting_fields`).

    The flag is the field's own name (`analyzer.window_s` → `--window-s`); `aliases`
    maps a dotted path to an extra, older spelling kept for compatibility.
    """
    aliases = aliases or {}
    for path in paths:
        for dotted, field in setting_fields(path):
            names = ["--" + dotted.rsplit(".", 1)[-1].replace("_", "-")]
            if dotted in aliases:
                names.append(aliases[dotted])
            parser.add_argument(
                *names, dest=_DEST_PREFIX + dotted, **_argument_options(dotted, field)
            )


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings from the environment, with every flag the user gave winning over it."""
    overrides: dict[str, Any] = {}
    for dest, value in vars(args).items():
        if not dest.startswith(_DEST_PREFIX) or value is None:
            continue
        *sections, name = dest.removeprefix(_DEST_PREFIX).split(".")
        target = overrides
        for section in sections:
            target = target.setdefault(section, {})
        target[name] = value
    return Settings(**overrides)


def _section_model(field: FieldInfo) -> type[BaseModel]:
    annotation = field.annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    raise ValueError(f"{annotation!r} is not a settings section")


def _argument_options(dotted: str, field: FieldInfo) -> dict[str, Any]:
    annotation = _without_none(field.annotation)
    default = field.get_default(call_default_factory=True)
    shown = "" if default is None else f", default {default}"
    options: dict[str, Any] = {
        "default": None,  # None = not given: the environment or the default applies
        "help": f"{field.description} (env {environment_name(dotted)}{shown})",
    }
    if annotation is bool:
        options["action"] = argparse.BooleanOptionalAction
        return options
    if typing.get_origin(annotation) is typing.Literal:
        options["choices"] = list(typing.get_args(annotation))
        return options
    if annotation in (int, float, Path):
        options["type"] = annotation
    options["metavar"] = dotted.rsplit(".", 1)[-1].upper()
    return options


def _without_none(annotation: Any) -> Any:
    """`int | None` → `int`: a flag sets a value; leaving it out keeps the default."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        remaining = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(remaining) == 1:
            return remaining[0]
    return annotation
