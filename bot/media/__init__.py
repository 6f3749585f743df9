"""Media work that knows nothing of Discord: fetching a provider's result file safely (fetch) and reading,
re-encoding and taking frames from videos with PyAV (video)."""
