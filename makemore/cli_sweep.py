"""The sweep command, registered on makemore.cli.app."""
