"""Open Badges for Questline: every awarded badge can leave as a verifiable credential.

Open Badges 3.0 ``OpenBadgeCredential`` documents signed with the tenant's Ed25519 key (Data
Integrity ``eddsa-rdfc-2022`` and VC-JWT), revocation through a BitstringStatusList, Open Badges
2.0 hosted assertions, baked PNGs and a public verify page. Credentials are issued lazily from an
award row (``player_badges``), so the award pipeline does not know this package exists.
See docs/openbadges.md.
"""
