"""Demand planning on the ledger's history: forecasts and reorder suggestions. Pure
computation (numpy, statsforecast), no I/O."""
