"""Knowledge: documents, chunks, embeddings, the vector store and index versions."""
