"""Webhook receivers (Moodle, Canvas, Caliper, xAPI, HubSpot, Salesforce, Standard Webhooks) and
outbound webhooks: issue 6. ``POST /webhooks/<connection>`` verifies the raw bytes, parses them
into canonical events (``engine.events``), stores them in the inbox with
``questline.ingest.store_events`` before answering, and wakes the workers. See docs/webhooks.md.
"""
