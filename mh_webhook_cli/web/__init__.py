"""The web inspector's page, script and style: shipped as package data, fetched from nowhere."""
