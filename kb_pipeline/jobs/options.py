"""What an ingestion job is asked to do (the ``options`` column), and the chunking it uses."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from helpdesk.policy import TenantPolicy
from kb_pipeline.loaders import DEFAULT_MAX_FILE_BYTES, Visibility

DEFAULT_MAX_TOKENS = 512
DEFAULT_OVERLAP = 64


class JobOptions(BaseModel):
    """What an ingestion job is asked to do. Unset chunking falls back to the tenant policy."""

    model_config = ConfigDict(extra="forbid")

    visibility: Visibility | None = Field(
        default=None,
        description="internal: every article internal. external/unset: each article's own.",
    )
    tags: list[str] = Field(default_factory=list, description="Tags added to every article.")
    max_tokens: int | None = Field(
        default=None, ge=16, le=8192, description="Chunk size (default: tenant policy, 512)."
    )
    overlap: int | None = Field(
        default=None, ge=0, description="Chunk overlap (default: tenant policy, 64)."
    )
    cleanup: bool = Field(
        default=False, description="Delete the tenant's articles that are not in the source."
    )
    force: bool = Field(
        default=False, description="Re-index unchanged articles too (after a chunking change)."
    )
    max_file_bytes: int = Field(
        default=DEFAULT_MAX_FILE_BYTES, ge=1, description="Larger files fail with too_large."
    )

    @model_validator(mode="after")
    def _overlap_below_size(self) -> JobOptions:
        if (
            self.max_tokens is not None
            and self.overlap is not None
            and self.overlap >= self.max_tokens
        ):
            raise ValueError(
                f"overlap ({self.overlap}) must be below max_tokens ({self.max_tokens})"
            )
        return self

    def chunking(self, policy: TenantPolicy) -> tuple[int, int]:
        """Effective ``(max_tokens, overlap)``: job options, then tenant policy, then defaults.

        An overlap that is inherited (not set on the job) and does not fit a smaller chunk size
        is scaled down to an eighth of it, so ``--max-tokens 64`` alone just works.

        Raises:
            ValueError: the combination is invalid (an explicit overlap too large).
        """
        max_tokens = self.max_tokens or policy.chunk_max_tokens or DEFAULT_MAX_TOKENS
        if self.overlap is not None:
            overlap = self.overlap
        else:
            overlap = policy.chunk_overlap if policy.chunk_overlap is not None else DEFAULT_OVERLAP
            if overlap >= max_tokens:
                overlap = max_tokens // 8
        if overlap >= max_tokens:
            raise ValueError(f"overlap ({overlap}) must be below max_tokens ({max_tokens})")
        return max_tokens, overlap
