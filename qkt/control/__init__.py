"""The HTTP control plane of the daemon (FastAPI) and its client."""
