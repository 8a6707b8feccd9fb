"""Growing the taxonomy: LLM proposals of new nodes, and the human review that accepts them."""
