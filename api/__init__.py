"""The HTTP API: routes, error mapping and the server command."""
