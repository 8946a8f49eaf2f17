"""An Ollama-compatible HTTP model runtime over llama.cpp."""
