"""Delivering outbox rows: claim, compose from the current state, send, record.

Every entry point is a plain coroutine taking ids, safe to run any number of
times and from any number of processes at once:

- A row is CLAIMED when its delivery begins (never at enqueue or when a
  worker fetches the message), by a conditional UPDATE (not sent, not
  failed, due) that pushes `available_at` one lease into the future and
  counts the attempt (`claim`). A duplicate Dramatiq delivery, a second
  relay or the embedded loop finds the row not due and sends nothing. A
  one-message delivery is cut before its lease ends
  (`DeliveryPolicy.send_budget`), so a second claim never overlaps that
  send, whatever the lease is set to.
- The email is composed from the state at send time (the payload holds ids):
  a revoked or superseded invitation is not sent, and the invitation token is
  derived then (`invitation_token(id, token_version)`), never stored
  (`compose`).
- The result is recorded right after the SMTP server answers: `sent_at`, or
  the error with the next attempt pushed back exponentially, or `failed_at`
  for a permanent refusal or when the attempts run out (`results`).
- Rows left behind (broker down, process killed, rows written by the CLI)
  are handed to the broker again by the relay (`relay`).

Duplicate window: a message can be sent twice only when a process stops
(killed, crashed, database unreachable) after the SMTP server accepted the
message and before `sent_at` was committed, or when a send is cut at the end
of its budget just after the server took the message; the row is claimed
again once its lease has passed (or at its retry time). For a batch
(`deliver_due_messages`, embedded mode) the window spans the batch: results
are recorded when the connection is closed, and the batch is not cut at the
lease. Every copy carries the same Message-ID
(`<outbox-{id}@{host of PUBLIC_URL}>`), so mail clients and most servers
collapse such a duplicate.
"""
