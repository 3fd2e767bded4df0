"""Webhook delivery: the URL guard, the HTTP client, signing and recording.

A webhook is an outbox row of kind WEBHOOK: the claim, lease, relay and
dispatch of workers/outbox/ deliver it; only the send and its recording are
here.
"""
