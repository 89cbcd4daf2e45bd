"""Read path for readers: thread JSON, the server-rendered thread and form, and the embed assets."""
