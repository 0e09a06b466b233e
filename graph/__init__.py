"""The conversation state machine: one checkpointed LangGraph thread per conversation."""
