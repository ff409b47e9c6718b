"""Self-contained HTML pages (no server needed, no network): the restricted-key picker and the day's spend."""
