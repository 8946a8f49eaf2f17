"""Chat UI helpers for the Streamlit page (filled in by the UI issue)."""
