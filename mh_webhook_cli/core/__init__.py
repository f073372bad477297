"""The pure core: what mhw knows about Magic Hour's webhooks, with no I/O.

No sockets, no files, no clock unless the caller passes ``now``; nothing from mhw is
imported here but :mod:`mh_webhook_cli.errors` (``tests/test_layers.py`` checks it), so
every edge and command can build on it and a test needs no fakes for it.
"""
