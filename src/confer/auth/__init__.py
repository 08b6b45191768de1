"""Credentials: argon2id password hashes, JWT access tokens, rotating refresh tokens."""
