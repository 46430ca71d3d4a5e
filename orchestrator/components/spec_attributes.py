"""The spec's fields as YAML attributes, derived from :class:`~worker.core.spec.ImportSpec` (declared once).

:data:`SpecAttributes` is a keyword-only dataclass with one field per ``ImportSpec`` field, the
same name and default, typed with what YAML can hold: an enum becomes a ``Literal`` of its values,
``Sequence``/``Mapping`` become ``list``/``dict``, and a union keeps its plain-data members
(``SchemaFieldSpec | Mapping[str, str]`` -> ``dict[str, str]``; ``LoadOptions | Mapping[str, Any]``
-> ``dict[str, Any]``). The component inherits it, so Dagster's ``Resolvable`` derives the schema
``dg check yaml`` checks names and types against; the spec's own validation runs in
``to_config``. A spec field of a type with no plain-data form fails here, at import, naming it.
"""

from __future__ import annotations

import dataclasses
import enum
import typing
from collections.abc import Mapping, Sequence
from types import NoneType, UnionType
from typing import Any, Literal, Union, get_args, get_origin

from worker.core.spec import ImportSpec

__all__ = ["SPEC_FIELD_NAMES", "SpecAttributes", "yaml_type"]

_PLAIN = (str, int, float, bool, NoneType, Any)


def yaml_type(annotation: Any) -> Any:
    """The plain-data type of ``annotation`` (see the module docstring), or ``None`` if it has none."""
    origin, args = get_origin(annotation), get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return Literal[tuple(member.value for member in annotation)]
    if annotation in _PLAIN:
        return annotation
    if origin in (Union, UnionType):
        enums = [arg for arg in args if isinstance(arg, type) and issubclass(arg, enum.Enum)]
        if enums:  # `SourceFormat | str`: the str only stands for a member's value or name
            args = tuple(arg for arg in args if arg is not str)
        members = [t for t in dict.fromkeys(yaml_type(arg) for arg in args) if t is not None]
        return Union[tuple(members)] if members else None  # noqa: UP007 (a Union built at run time)
    if origin in (Sequence, list, tuple) and len(args) == 1:
        item = yaml_type(args[0])
        return None if item is None else list[item]
    if origin in (Mapping, dict) and len(args) == 2:
        key, value = yaml_type(args[0]), yaml_type(args[1])
        return None if key is None or value is None else dict[key, value]
    return None


def _attribute(spec_field: dataclasses.Field, annotation: Any) -> tuple[str, Any, dataclasses.Field]:
    plain = yaml_type(annotation)
    if plain is None:
        raise TypeError(f"ImportSpec field {spec_field.name!r} has type {annotation!r}, which has no YAML form: "
                        "give it a plain-data alternative (str, int, bool, list, dict or an enum)")
    if spec_field.default is dataclasses.MISSING:
        return spec_field.name, plain, dataclasses.field()
    default = spec_field.default.value if isinstance(spec_field.default, enum.Enum) else spec_field.default
    return spec_field.name, plain, dataclasses.field(default=default)


def _spec_attributes() -> type:
    hints = typing.get_type_hints(ImportSpec)
    attributes = dataclasses.make_dataclass(
        "SpecAttributes", [_attribute(f, hints[f.name]) for f in dataclasses.fields(ImportSpec)], kw_only=True,
    )
    attributes.__module__ = __name__  # (make_dataclass's `module` argument is Python 3.12+)
    attributes.__doc__ = "The fields of :class:`~worker.core.spec.ImportSpec` as YAML attributes (plain data)."
    return attributes


#: ``ImportSpec``'s fields as plain-data attributes (a base class of the YAML component).
SpecAttributes = _spec_attributes()
#: The names of the spec's fields, in declaration order.
SPEC_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(SpecAttributes))
