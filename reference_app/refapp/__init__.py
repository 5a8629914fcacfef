"""The scalectl reference app: a CV/document submission service with the full caching,
queue, cluster and database stack. See docs/reference-app.md."""
