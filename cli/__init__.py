"""The ``deskgraph`` command: serve, chat, ingest, search, eval, keys, tenants (see ``main``)."""
