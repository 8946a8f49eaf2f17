"""GenAILabs chat UI: the modules behind streamlit_service/main.py."""
