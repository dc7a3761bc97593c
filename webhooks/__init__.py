"""Webhook receivers (Moodle, Canvas, Caliper, xAPI, HubSpot, Salesforce, Standard Webhooks):
issue 6. Each will verify raw bytes, parse to canonical events with ``engine.events``, store in
the inbox with ``questline.ingest.store_events`` and answer fast.

Empty until that issue lands: nothing here pretends to receive a webhook yet.
"""
