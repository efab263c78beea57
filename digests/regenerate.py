"""Regenerating one section's summary. (Stub: filled in by the regeneration work.)"""

from __future__ import annotations

from typing import Any


def regeneration_run(*, regeneration_id: int) -> dict[str, Any]:
    raise NotImplementedError
