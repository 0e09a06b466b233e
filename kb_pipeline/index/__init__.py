"""The chunk index: ingestion into and hybrid retrieval from one tenant-partitioned table.

:class:`KnowledgeBase` (:mod:`~kb_pipeline.index.knowledge_base`) is the entry point. Its
parts, one concern each: :mod:`~kb_pipeline.index.schema` (the tables, created and brought up
to date on open), :mod:`~kb_pipeline.index.writing` (ingestion and deletion),
:mod:`~kb_pipeline.index.search` (hybrid search, article-level results) over
:mod:`~kb_pipeline.index.dense`, :mod:`~kb_pipeline.index.bm25` and
:mod:`~kb_pipeline.index.fusion`.

Code outside this package imports what it needs from here; tuning constants stay in the module
they tune.
"""

from kb_pipeline.index.knowledge_base import KnowledgeBase
from kb_pipeline.index.search import Audience, Retrieved, SearchMode
from kb_pipeline.index.writing import IngestStats

__all__ = ["Audience", "IngestStats", "KnowledgeBase", "Retrieved", "SearchMode"]
