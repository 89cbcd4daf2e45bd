"""For readers: the Leave-a-Reply write path (JSON and no-JS form posts), abuse checks, auto-moderation."""
