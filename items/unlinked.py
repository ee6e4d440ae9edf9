"""The data contract of `unlinked.jsonl`: a page reconciliation could not tie
to a trial with confidence (written by `harvester.reconciliation`), so a
person can link it by hand."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from items.records import Identifier


class Candidate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    nct_id: str
    score: float
    source: Literal["store", "api"]
    evidence: dict[str, Any] = Field(default_factory=dict)


class UnlinkedPage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site: str
    url: str
    fetched_at: datetime
    brief_title: Optional[str] = None
    official_title: Optional[str] = None
    lead_sponsor: Optional[str] = None  # the sponsor's name
    identifiers: list[Identifier] = Field(default_factory=list)
    reason: Literal["no_candidates", "below_threshold", "sponsor_differs", "insufficient_evidence", "ambiguous"]
    candidates: list[Candidate] = Field(default_factory=list)  # the best three
