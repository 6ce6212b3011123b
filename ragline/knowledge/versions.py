"""Index versions: each build is a new, immutable collection kb_v{N} with a manifest row;
the alias moves only on promote or rollback, in one call. IndexManager is what the indexer,
the API's index routes and evaluations hold: the catalog (catalog.py) with building
(building.py) and releasing (releasing.py)."""

from __future__ import annotations

from ragline.knowledge.building import IndexBuilder, Progress
from ragline.knowledge.catalog import (
    VersionDiff,
    VersionListing,
    collection_name,
    version_of,
)
from ragline.knowledge.releasing import IndexReleases

__all__ = [
    "IndexManager",
    "Progress",
    "VersionDiff",
    "VersionListing",
    "collection_name",
    "version_of",
]


class IndexManager(IndexBuilder, IndexReleases):
    """Listing, promoting and diffing need no embedder; building does (see IndexBuilder)."""
