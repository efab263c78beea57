"""The send engine: a digest to every active reader, exactly once, at the set pace.

One job per module; `subscribers.tasks` calls them and is the only one that enqueues:

- `plan`: start a send (approved and due -> sending) and make its Delivery rows in ranges of
  readers, grouped into chunks of one variant and language;
- `chunk`: one chunk: claim, send through the transport, record; and the test send;
- `transports`: how emails leave (`Transport`: the batch API with merge data, SMTP, any
  Django backend); touches no database;
- `ledger`: the Delivery rows and every change of their state; the one place that counts them;
- `pace`: the shared rate limit and the pause after errors in a row;
- `recovery`: resume after a crash or a pause, resend to the unknown, what beat runs.

The messages themselves are built in `subscribers.emails`.
"""
