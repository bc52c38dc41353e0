"""Browser sign-in: a token exchanged for a session cookie, with CSRF protection (see `service`)."""
