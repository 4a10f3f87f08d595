"""LLM agents: the client, prompts (files), Coder, Judge and the LangGraph campaign graph.

Imported only by the CLI and campaigns; the core (kernelbench, sandbox, feedback, library) never
imports it, so it runs without an LLM SDK or LangGraph installed.
"""
