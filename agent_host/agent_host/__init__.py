"""GenAILabs agent host: FastAPI service between the UI and the LiteLLM proxy (phase 2)."""
