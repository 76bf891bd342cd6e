"""Where features live: table layout, the registry and the one Delta write protocol."""
