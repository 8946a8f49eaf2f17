"""Runs the GenAILabs stack natively: a private PostgreSQL, the model runtimes and the proxy under supervisor."""
