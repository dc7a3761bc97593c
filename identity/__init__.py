"""Identities: every way a person arrives (actor id, email; later LTI, SSO, CRM) -> one player."""
