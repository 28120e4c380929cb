"""Redis adapters: the aggregate store, alert state, post samples and the connection."""
