"""The open interfaces: read-only answers in open standards (OGC API – Features under
`/ogc`), for pilots the registry opens (`[pilots.open]`) or with a viewer key (`access.py`)."""
