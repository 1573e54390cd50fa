"""Claim tests run with the crlm_bench plugin (registered by the package's pytest11 entry point)."""
