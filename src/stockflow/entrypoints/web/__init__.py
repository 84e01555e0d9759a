"""The merchants' console at `/console`: pages rendered on the server by the API process
(docs/decisions/0014), signed in with an API key."""
