"""The Mastodon client API and its OAuth 2 server, so Mastodon apps and libraries work with fedserver."""
