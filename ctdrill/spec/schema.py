"""The JSON Schemas of drill specs and game-day suites, generated from their models.

`ctdrill validate` runs the same models, so a file the schema accepts is one validate
accepts, except where a model's `rules` (listed in the schema as `x-ctdrill-rules`)
say what JSON Schema cannot state.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from ctdrill.gameday.suite import Suite
from ctdrill.spec.models import DrillSpec

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


class _ClosedKeys(GenerateJsonSchema):
    """Mappings with constrained keys allow no other keys.

    pydantic writes a key pattern as `patternProperties`, which lets every key that does
    not match through unchecked (so `kernel.panic` passed as a sysctl). `propertyNames`
    says what the model checks: every key must match.
    """

    def dict_schema(self, schema: core_schema.DictSchema) -> JsonSchemaValue:
        out = super().dict_schema(schema)
        patterns = out.pop("patternProperties", None)
        if patterns:
            ((pattern, values),) = patterns.items()
            out["propertyNames"] = {**out.get("propertyNames", {}), "pattern": pattern}
            out["additionalProperties"] = values
        return out


def _schema(model: type[BaseModel], title: str) -> dict[str, Any]:
    body = model.model_json_schema(schema_generator=_ClosedKeys)
    body.pop("title", None)
    return {"$schema": SCHEMA_DIALECT, "title": title, **body}


def drill_schema() -> dict[str, Any]:
    """DrillSpec's JSON Schema (draft 2020-12, what pydantic emits)."""
    return _schema(DrillSpec, "ctdrill drill spec")


def suite_schema() -> dict[str, Any]:
    """Suite's JSON Schema: a file with the top-level key `gameday`."""
    return _schema(Suite, "ctdrill game-day suite")
