"""``python -m mh_webhook_cli`` runs the same CLI as ``mhw``."""

from mh_webhook_cli.cli import main

main()
