"""The parameters of every operation of an OpenAPI document, for tests that walk every
route: so a new route or parameter is covered without touching the tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LOCATIONS = ("path", "query", "header")


@dataclass(frozen=True)
class Parameter:
    method: str
    path: str
    name: str
    location: str
    schema: dict[str, Any]  # the parameter's schema without its null alternative
    required: bool

    @property
    def label(self) -> str:
        return f"{self.method.upper()} {self.path} {self.location}.{self.name}"


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    alternatives = [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]
    return alternatives[0] if len(alternatives) == 1 else schema


def parameters(spec: dict[str, Any]) -> list[Parameter]:
    """Every path, query and header parameter of every operation."""
    return [
        Parameter(
            method,
            path,
            p["name"],
            p["in"],
            _not_null(p.get("schema", {})),
            bool(p.get("required")),
        )
        for path, operations in sorted(spec["paths"].items())
        for method, operation in sorted(operations.items())
        for p in operation.get("parameters", [])
        if p["in"] in LOCATIONS
    ]


def is_integer(parameter: Parameter) -> bool:
    return parameter.schema.get("type") == "integer"


def is_instant(parameter: Parameter) -> bool:
    return parameter.schema.get("format") == "date-time"


def is_bounded(schema: dict[str, Any]) -> bool:
    """Whether a parameter's schema says how large its values may be."""
    kind = schema.get("type")
    if "enum" in schema or "const" in schema or kind == "boolean":
        return True
    if kind == "integer" or kind == "number":
        return "maximum" in schema and "minimum" in schema
    if kind == "string":
        return (
            "maxLength" in schema
            or "pattern" in schema
            or schema.get("format") in ("uuid", "date-time", "date", "time")
        )
    return False


def operation_parameters(spec: dict[str, Any], method: str, path: str) -> list[Parameter]:
    return [p for p in parameters(spec) if p.method == method and p.path == path]


def request(
    spec: dict[str, Any],
    parameter: Parameter,
    value: Any,
    path_values: dict[str, str],
    defaults: dict[str, str],
) -> tuple[str, dict[str, Any], dict[str, str]]:
    """The URL, query and headers of a request to ``parameter``'s operation that gives
    ``parameter`` the ``value`` and every other required parameter a valid one."""
    url, query, headers = parameter.path, {}, {}
    for p in operation_parameters(spec, parameter.method, parameter.path):
        given = value if p == parameter else path_values.get(p.name, defaults.get(p.name))
        if given is None:
            continue
        if p.location == "path":
            url = url.replace("{" + p.name + "}", str(given))
        elif p.location == "query" and (p.required or p == parameter):
            query[p.name] = given
        elif p.location == "header" and p == parameter:
            headers[p.name] = str(given)
    return url, query, headers
