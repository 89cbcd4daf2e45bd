"""Self-hosted comments: reader replies, moderation and export."""
