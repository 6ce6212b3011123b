"""ragline: a self-hosted, asynchronous RAG backend that business systems can trust."""

__version__ = "0.1.0"
