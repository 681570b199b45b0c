"""The base of the models foldserve sends as JSON and reads back from any endpoint.

They are frozen, and parsing them ignores fields they do not know, so a client keeps working
against an endpoint that adds fields (RunPod adds its own to every answer; a newer foldserve
may add some to its output). What they send leaves out every field still at its default
(an absent optional), the JSON foldserve has always sent.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class WireModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", use_attribute_docstrings=True)

    def to_wire(self) -> dict[str, Any]:
        """The JSON object as sent: fields at their default (absent optionals) left out."""
        return self.model_dump(mode="json", exclude_defaults=True)
