"""The read side: what the API shows, scoped to the principal's account.

Typed async functions, keyword-only, the acting principal explicit, no GraphQL
concepts. By topic:

- `access`: who may read what (pure functions);
- `cursors` and `pages`: keyset pagination; a cursor carries the sort key of
  the last row and its id, never an offset, so a page costs the same at row 10
  and at row 100,000;
- `users`: the users page (filters, orders, its count) and one user;
- `summary`: the licence summary;
- `records`: charges, audit log and API tokens, newest first;
- `batches`: ONE statement for a list of keys, results in key order, for the
  per-request DataLoaders of the API layer.
"""
