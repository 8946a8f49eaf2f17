"""The hub: hashed virtual keys, budgets and per-request usage logging on PostgreSQL for the LiteLLM proxy."""
