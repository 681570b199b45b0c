"""The base of the models foldserve sends as JSON and reads back from any endpoint.

They are frozen, and parsing them ignores fields they do not know, so a client keeps working
against an endpoint that adds fields (RunPod adds its own to every answer; a newer foldserve
may add some to its output). What they send leaves out every field still at its default
(an absent optional), the JSON foldserve has always sent.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict

from foldserve.errors import InputError


class WireModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", use_attribute_docstrings=True)

    def to_wire(self) -> dict[str, Any]:
        """The JSON object as sent: fields at their default (absent optionals) left out."""
        return self.model_dump(mode="json", exclude_defaults=True)


def json_body(data: bytes, *, fix: str) -> Any:
    """The JSON of a request's body; whatever cannot be read (nesting deeper than Python's
    recursion limit, text that is not UTF-8, a number of over 4,300 digits) is one
    :class:`InputError` naming ``body``, with ``fix``."""
    try:
        return json.loads(data)
    except RecursionError:
        reason = "nested too deeply"
    except json.JSONDecodeError as exc:
        reason = f"{exc.msg} at line {exc.lineno}, column {exc.colno}"
    except UnicodeDecodeError as exc:
        reason = f"not UTF-8 at byte {exc.start}"
    except ValueError as exc:
        reason = str(exc).split(":")[0][:100]
    raise InputError(f"not valid JSON ({reason})", where="body", fix=fix)
