"""The chunk index: ingestion into and hybrid retrieval from one tenant-partitioned table.

Everything is in :mod:`~kb_pipeline.index.knowledge_base` for now; code outside this package
imports what it needs from here.
"""

from kb_pipeline.index.knowledge_base import (
    Audience,
    Hit,
    IngestStats,
    KnowledgeBase,
    SearchMode,
)

__all__ = ["Audience", "Hit", "IngestStats", "KnowledgeBase", "SearchMode"]
