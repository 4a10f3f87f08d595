"""LLM agents (Coder, Judge) and the LangGraph campaign graph. Not built yet: see issue 3."""
