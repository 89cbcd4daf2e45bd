"""Site owners: streamed JSON Lines/CSV/WXR export, WXR/Disqus/JSONL import, personal-data requests."""
