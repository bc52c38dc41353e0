"""The review workspace: one page, its scripts and styles (`static/`), the vendored layout and
API-docs libraries (`vendor/`, refreshed by `vendor/update.sh`), all served by Studbook itself
under a Content-Security-Policy of `'self'`. The page holds no data; it reads the JSON API."""
