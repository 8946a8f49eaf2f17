"""Version numbers, kept out of __init__.py: run from the repository root with an editable install,
`local_runtime` resolves to a namespace package whose __init__ never runs (submodules still import)."""

__version__ = "0.1.0"

# The Ollama release whose API shapes the runtime follows (what /api/version reports).
OLLAMA_API_VERSION = "0.6.8"
