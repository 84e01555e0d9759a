"""The HTTP API (`stockflow api`): FastAPI on uvicorn. Reads come from Postgres; writes
become events on the input topics, so the processor stays the only writer of stock."""
