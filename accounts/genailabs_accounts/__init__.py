"""People of a GenAILabs: accounts, sign-in sessions, personal API keys, and the `genailabs` database's schema."""
