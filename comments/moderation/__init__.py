"""For moderators and owners: accounts, sessions, the queue, audit log and the /admin UI."""
