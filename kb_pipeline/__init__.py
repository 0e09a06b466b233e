"""Knowledge base: load -> normalise -> chunk -> embed -> index, and hybrid retrieval."""
